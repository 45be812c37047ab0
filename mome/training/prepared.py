"""Training data on the model grid, ready for the loop: prepared once, optionally saved to a folder.

Preparing (reading, reorienting, resampling, building K-channel targets, embedding class names) needs
SimpleITK and the text encoder; training needs neither. A prepared folder lets the two run on
different machines — prepare on a workstation that holds the data, train on a GPU node — and lets
repeated runs skip the preparation (the role MONAI's PersistentDataset plays, for whole cases).

Folder layout::

    prepared.json           classes, embeddings' encoder, preprocessing, provenance, case index
    embeddings.safetensors  K×T class text embeddings (rows in class order)
    cases/<n>.npz           image 1×X×Y×Z float16 in [0, 1], target K×X×Y×Z uint8 (bit-packed), labelled K

This module deliberately imports neither SimpleITK nor the text encoders.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file

PREPARED_FORMAT = "mome-prepared-data"
PREPARED_VERSION = 1
INDEX = "prepared.json"
EMBEDDINGS = "embeddings.safetensors"


@dataclass
class PreparedCase:
    id: str
    dataset: str
    image: np.ndarray  # 1×X×Y×Z float32 in [0, 1] (MONAI layout, as inference feeds the network)
    target: np.ndarray  # K×X×Y×Z uint8
    labelled: np.ndarray  # K bool

    @property
    def present(self) -> np.ndarray:
        """K bool: annotated and non-empty in this case."""
        return self.labelled & (self.target.reshape(len(self.labelled), -1).max(axis=1) > 0)


@dataclass
class TrainingData:
    """Everything the training loop reads: classes, their text embeddings, and prepared cases."""

    classes: list[str]
    embeddings: torch.Tensor  # K×T
    text_encoder: str  # id of the encoder that made ``embeddings``
    spacing: tuple[float, float, float]
    hu_window: tuple[float, float]
    train: list[PreparedCase]
    val: list[PreparedCase]
    provenance: dict[str, Any] = field(default_factory=dict)  # manifest hash, case lists, class counts

    def save(self, folder: str | Path) -> Path:
        """Write the folder atomically (a sibling temp folder renamed into place)."""
        folder = Path(folder)
        if folder.exists():
            raise FileExistsError(f"{folder} already exists; remove it or choose another folder")
        tmp = folder.with_name(f".{folder.name}.tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        (tmp / "cases").mkdir(parents=True)
        index = []
        for n, (split, case) in enumerate([("train", c) for c in self.train] + [("val", c) for c in self.val]):
            name = f"cases/{n:04d}.npz"
            np.savez_compressed(
                tmp / name,
                image=case.image.astype(np.float16),  # [0, 1] values: half precision loses nothing visible
                target=np.packbits(case.target.astype(bool), axis=None),
                labelled=case.labelled,
            )
            index.append({"file": name, "id": case.id, "dataset": case.dataset, "split": split,
                          "shape": list(case.target.shape)})
        save_file({"embeddings": self.embeddings.float().contiguous()}, str(tmp / EMBEDDINGS))
        (tmp / INDEX).write_text(json.dumps({
            "format": PREPARED_FORMAT, "format_version": PREPARED_VERSION, "classes": self.classes,
            "text_encoder": self.text_encoder, "spacing": list(self.spacing), "hu_window": list(self.hu_window),
            "provenance": self.provenance, "cases": index,
        }, indent=2))
        os.replace(tmp, folder)
        return folder

    @classmethod
    def load(cls, folder: str | Path) -> "TrainingData":
        folder = Path(folder)
        index_path = folder / INDEX
        if not index_path.is_file():
            raise FileNotFoundError(
                f"{folder} is not a prepared-data folder (no {INDEX}); make one with "
                "`mome train CONFIG --prepare-only FOLDER`"
            )
        index = json.loads(index_path.read_text())
        if index.get("format") != PREPARED_FORMAT or index.get("format_version", 0) > PREPARED_VERSION:
            raise ValueError(f"{index_path} is not prepared data this version of MoME can read")
        splits: dict[str, list[PreparedCase]] = {"train": [], "val": []}
        for entry in index["cases"]:
            with np.load(folder / entry["file"]) as arrays:
                shape = tuple(entry["shape"])
                target = np.unpackbits(arrays["target"], count=int(np.prod(shape))).reshape(shape)
                splits[entry["split"]].append(PreparedCase(
                    entry["id"], entry["dataset"], arrays["image"].astype(np.float32), target,
                    arrays["labelled"].astype(bool),
                ))
        return cls(
            classes=list(index["classes"]),
            embeddings=load_file(str(folder / EMBEDDINGS))["embeddings"],
            text_encoder=index["text_encoder"],
            spacing=tuple(index["spacing"]),  # type: ignore[arg-type]
            hu_window=tuple(index["hu_window"]),  # type: ignore[arg-type]
            train=splits["train"],
            val=splits["val"],
            provenance=index.get("provenance", {}),
        )

    def check_matches(self, spacing, hu_window) -> None:
        """Refuse to train a model whose preprocessing differs from the data's."""
        if not (np.allclose(self.spacing, spacing) and np.allclose(self.hu_window, hu_window)):
            raise ValueError(
                f"the prepared data was resampled to {list(self.spacing)} mm with HU window "
                f"{list(self.hu_window)}, but this run needs {list(spacing)} mm and {list(hu_window)}; "
                "prepare the data again with this config"
            )
