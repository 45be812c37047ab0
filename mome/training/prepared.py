"""Prepared training data on disk: written one case at a time, read lazily, crop by crop.

Preparing (reading, reorienting, resampling, building per-class targets, embedding class names) needs
SimpleITK and the text encoder; training needs neither. A prepared folder lets the two run on
different machines — prepare on a workstation that holds the data, train on a GPU node — and lets
repeated runs skip the preparation (the role MONAI's PersistentDataset plays).

Nothing here holds more than one case in memory. The arrays are plain ``.npy`` files, opened as
memory maps, so a training crop reads only the pages it covers; that is why memory does not grow with
the number of cases, and why DataLoader workers can share the files through the page cache.

Folder layout (format version 2)::

    prepared.json            classes, text encoder, preprocessing, dataset weights, provenance, case index
    embeddings.safetensors   K×T class text embeddings (rows in class order)
    cases/<n>.image.npy      1×X×Y×Z float16 in [0, 1] (MONAI layout: array axis 1 = index x)
    cases/<n>.labels.npy     L×X×Y×⌈Z/8⌉ uint8: one channel per class the case annotates (the index's
                             ``labelled``, in that order), bit-packed along z; a class the case does not
                             annotate has no channel at all: it is unknown, never background
    cases/<n>.points.npy     int32 flat voxel indices (C order over X×Y×Z), up to ``POINTS_PER_CLASS``
                             per class and as many of the background of the annotated classes: where
                             crops may be centred (nnU-Net's "class locations"); the index's ``points``
                             holds the K + 2 offsets into it (background first, then class by class)

This module deliberately imports neither SimpleITK nor the text encoders.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file

PREPARED_FORMAT = "mome-prepared-data"
PREPARED_VERSION = 2
INDEX = "prepared.json"
EMBEDDINGS = "embeddings.safetensors"
# nnU-Net keeps 10 000 locations per class as well: enough to reach every part of a large organ,
# and all of the voxels of a small tumour.
POINTS_PER_CLASS = 10_000


@dataclass
class PreparedCase:
    """One whole case in memory (validation, evaluation): what ``prepare_case`` returns."""

    id: str
    dataset: str
    image: np.ndarray  # 1×X×Y×Z float32 in [0, 1] (MONAI layout, as inference feeds the network)
    target: np.ndarray  # K×X×Y×Z uint8
    labelled: np.ndarray  # K bool

    @property
    def present(self) -> np.ndarray:
        """K bool: annotated and non-empty in this case."""
        return self.labelled & (self.target.reshape(len(self.labelled), -1).max(axis=1) > 0)


@dataclass(frozen=True)
class CaseEntry:
    """A prepared case as the index lists it: where its files are and what it annotates."""

    file: str  # "cases/<n>": the stem of its three files
    id: str
    dataset: str
    split: str
    shape: tuple[int, int, int]  # X, Y, Z on the model grid
    labelled: tuple[int, ...]  # class indices annotated, in the order of the label channels
    present: tuple[int, ...]  # class indices annotated and non-empty
    points: tuple[int, ...]  # K + 2 offsets into the points file: background, then each class

    def to_dict(self) -> dict[str, Any]:
        return {"file": self.file, "id": self.id, "dataset": self.dataset, "split": self.split,
                "shape": list(self.shape), "labelled": list(self.labelled), "present": list(self.present),
                "points": list(self.points)}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "CaseEntry":
        return cls(d["file"], d["id"], d["dataset"], d["split"], tuple(d["shape"]), tuple(d["labelled"]),
                   tuple(d["present"]), tuple(d["points"]))


def write_case(folder: Path, n: int, case: PreparedCase, split: str) -> CaseEntry:
    """Write one prepared case's files under ``folder``; the caller adds the entry to the index."""
    from monai.transforms.utils import map_classes_to_indices

    stem = f"cases/{n:06d}"
    (folder / "cases").mkdir(parents=True, exist_ok=True)
    labelled = np.flatnonzero(case.labelled)
    target = case.target[labelled].astype(bool)
    # [0, 1] values: half precision loses nothing a CT window shows, and halves the reads.
    np.save(folder / f"{stem}.image.npy", case.image.astype(np.float16))
    np.save(folder / f"{stem}.labels.npy", np.packbits(target, axis=-1))
    # Crop centres, per channel: background of the annotated classes, then each annotated class.
    if len(labelled):
        background = ~target.any(axis=0)
        found = map_classes_to_indices(np.concatenate([background[None], target]),
                                       max_samples_per_class=POINTS_PER_CLASS)
    else:  # the case annotates none of the run's classes: all of it is background
        found = map_classes_to_indices(np.zeros((1, *case.image.shape[1:]), np.uint8), num_classes=1,
                                       max_samples_per_class=POINTS_PER_CLASS)
    per_class: list[np.ndarray] = [np.empty(0, np.int64)] * (len(case.labelled) + 1)
    per_class[0] = np.asarray(found[0])
    for channel, k in enumerate(labelled):
        per_class[k + 1] = np.asarray(found[channel + 1])
    offsets = np.concatenate([[0], np.cumsum([len(p) for p in per_class])])
    np.save(folder / f"{stem}.points.npy", np.concatenate(per_class).astype(np.int32))
    present = [int(k) for c, k in enumerate(labelled) if target[c].any()]
    return CaseEntry(stem, case.id, case.dataset, split, tuple(int(s) for s in case.image.shape[1:]),
                     tuple(int(k) for k in labelled), tuple(present), tuple(int(o) for o in offsets))


class PreparedWriter:
    """Builds a prepared folder case by case; it appears (renamed into place) only when complete."""

    def __init__(self, folder: str | Path, *, classes: list[str], embeddings: torch.Tensor, text_encoder: str,
                 spacing, hu_window, dataset_weights: dict[str, float], provenance: dict[str, Any],
                 key: str | None = None):
        self.folder = Path(folder)
        if self.folder.exists():
            raise FileExistsError(f"{self.folder} already exists; remove it or choose another folder")
        self.tmp = self.folder.with_name(f".{self.folder.name}.tmp")
        shutil.rmtree(self.tmp, ignore_errors=True)
        (self.tmp / "cases").mkdir(parents=True)
        self.header = {
            "format": PREPARED_FORMAT, "format_version": PREPARED_VERSION, "key": key, "classes": list(classes),
            "text_encoder": text_encoder, "spacing": [float(s) for s in spacing],
            "hu_window": [float(h) for h in hu_window], "dataset_weights": dict(dataset_weights),
            "provenance": provenance,
        }
        save_file({"embeddings": embeddings.float().contiguous()}, str(self.tmp / EMBEDDINGS))
        self.entries: list[CaseEntry] = []

    def add(self, entry: CaseEntry) -> None:
        self.entries.append(entry)

    def finish(self) -> Path:
        (self.tmp / INDEX).write_text(json.dumps({**self.header, "cases": [e.to_dict() for e in self.entries]},
                                                 indent=1))
        os.replace(self.tmp, self.folder)
        return self.folder

    def abort(self) -> None:
        shutil.rmtree(self.tmp, ignore_errors=True)


class LazyCases(Sequence):
    """Whole cases loaded one at a time, on access (validation iterates over them)."""

    def __init__(self, data: "PreparedData", entries: list[CaseEntry]):
        self.data, self.entries = data, entries

    def __len__(self) -> int:
        return len(self.entries)

    def __getitem__(self, i):  # type: ignore[override]
        return self.data.load(self.entries[i])


@dataclass
class PreparedData:
    """A prepared folder: the index in memory (kilobytes per case), the arrays on disk."""

    folder: Path
    classes: list[str]
    embeddings: torch.Tensor  # K×T
    text_encoder: str  # id of the encoder that made ``embeddings``
    spacing: tuple[float, float, float]
    hu_window: tuple[float, float]
    train: list[CaseEntry]
    val: list[CaseEntry]
    dataset_weights: dict[str, float] = field(default_factory=dict)  # sampling weight per dataset name
    provenance: dict[str, Any] = field(default_factory=dict)  # manifest hash, case lists, class counts
    key: str | None = None  # what it was prepared from (see ``data.preparation_key``)

    @classmethod
    def open(cls, folder: str | Path) -> "PreparedData":
        folder = Path(folder)
        index = read_index(folder)
        entries = [CaseEntry.from_dict(e) for e in index["cases"]]
        return cls(
            folder=folder, classes=list(index["classes"]),
            embeddings=load_file(str(folder / EMBEDDINGS))["embeddings"],
            text_encoder=index["text_encoder"], spacing=tuple(index["spacing"]),  # type: ignore[arg-type]
            hu_window=tuple(index["hu_window"]),  # type: ignore[arg-type]
            train=[e for e in entries if e.split == "train"], val=[e for e in entries if e.split == "val"],
            dataset_weights=dict(index.get("dataset_weights") or {}), provenance=index.get("provenance", {}),
            key=index.get("key"),
        )

    # ------------------------------------------------------------------ reading
    def arrays(self, entry: CaseEntry) -> tuple[np.ndarray, np.ndarray]:
        """The case's image and packed labels as read-only memory maps (nothing is read yet)."""
        base = self.folder / entry.file
        return (np.load(f"{base}.image.npy", mmap_mode="r"), np.load(f"{base}.labels.npy", mmap_mode="r"))

    def points(self, entry: CaseEntry) -> list[np.ndarray]:
        """K + 1 arrays of flat voxel indices where crops may be centred (background first)."""
        points = np.load(self.folder / f"{entry.file}.points.npy", mmap_mode="r")
        o = entry.points
        return [points[o[i]:o[i + 1]] for i in range(len(o) - 1)]

    def read_crop(self, entry: CaseEntry, start: Sequence[int], size: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
        """Image ``1×P`` (float32) and target ``K×P`` (uint8) of the box [start, start + size).

        The box may reach outside the case: outside is 0 in both (air in [0, 1] units, and background —
        which is what MONAI's ``SpatialPad`` before a crop would have given).
        """
        image_map, labels_map = self.arrays(entry)
        shape = np.asarray(entry.shape)
        start, size = np.asarray(start, int), np.asarray(size, int)
        lo, hi = np.clip(start, 0, shape), np.clip(start + size, 0, shape)
        dst = tuple(slice(a, b) for a, b in zip(lo - start, hi - start))
        image = np.zeros((1, *size), np.float32)
        target = np.zeros((len(self.classes), *size), np.uint8)
        if np.any(hi <= lo):
            return image, target
        image[(slice(None), *dst)] = image_map[:, lo[0]:hi[0], lo[1]:hi[1], lo[2]:hi[2]]
        if entry.labelled:
            # Whole bytes along z, then unpack and trim to the box.
            z0, z1 = lo[2] // 8, -(-hi[2] // 8)
            packed = labels_map[:, lo[0]:hi[0], lo[1]:hi[1], z0:z1]
            bits = np.unpackbits(packed, axis=-1)[..., lo[2] - 8 * z0:hi[2] - 8 * z0]
            target[(list(entry.labelled), *dst)] = bits
        return image, target

    def load(self, entry: CaseEntry) -> PreparedCase:
        """The whole case in memory (validation): image float32, target K×X×Y×Z."""
        image, target = self.read_crop(entry, (0, 0, 0), entry.shape)
        labelled = np.zeros(len(self.classes), bool)
        labelled[list(entry.labelled)] = True
        return PreparedCase(entry.id, entry.dataset, image, target, labelled)

    def val_cases(self) -> LazyCases:
        return LazyCases(self, self.val)

    def check_matches(self, spacing, hu_window) -> None:
        """Refuse to train a model whose preprocessing differs from the data's."""
        if not (np.allclose(self.spacing, spacing) and np.allclose(self.hu_window, hu_window)):
            raise ValueError(
                f"the prepared data was resampled to {list(self.spacing)} mm with HU window "
                f"{list(self.hu_window)}, but this run needs {list(spacing)} mm and {list(hu_window)}; "
                "prepare the data again with this config"
            )


def read_index(folder: Path) -> dict[str, Any]:
    """The folder's index, after checking that this version of MoME reads its format."""
    index_path = folder / INDEX
    if not index_path.is_file():
        raise FileNotFoundError(
            f"{folder} is not a prepared-data folder (no {INDEX}); make one with "
            "`mome train CONFIG --prepare-only FOLDER`"
        )
    index = json.loads(index_path.read_text())
    version = index.get("format_version", 0)
    if index.get("format") != PREPARED_FORMAT:
        raise ValueError(f"{index_path} is not a MoME prepared-data index")
    if version < PREPARED_VERSION:
        raise ValueError(
            f"{folder} holds prepared data in format {version} (whole cases in .npz files, loaded into memory), "
            f"which this version of MoME no longer reads (it streams format {PREPARED_VERSION} from memory-mapped "
            "files); prepare it again from the manifest: `mome train CONFIG --prepare-only NEW_FOLDER`"
        )
    if version > PREPARED_VERSION:
        raise ValueError(
            f"{folder} holds prepared data in format {version}, newer than this version of MoME reads "
            f"({PREPARED_VERSION}); update MoME on this machine, or prepare the data here"
        )
    return index
