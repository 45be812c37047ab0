"""Medical Segmentation Decathlon layout: ``dataset.json``, ``imagesTr/`` with ``labelsTr/`` of the same
file names (also WORD's ``imagesVal``/``imagesTs`` and AMOS22's ``imagesVa`` folders).

``dataset.json`` gives the modality and ``labels`` (value → name); a preset gives them instead when the
dataset has no such file, or names its labels ambiguously.
"""

from __future__ import annotations

import json
from pathlib import Path

from ..vocabulary import Vocabulary
from .imported import ImportedDataset, preset_label_map, assign_splits, label_map_from_names
from .presets import DatasetPreset

# Image folder suffix -> split. "Tr" becomes train (and val, by --val-fraction, unless a val folder exists).
SPLIT_FOLDERS = (("Tr", "train"), ("Va", "val"), ("Val", "val"), ("Ts", "test"))
NIFTI = ("*.nii.gz", "*.nii", "*.nrrd", "*.mha")


def check_ct(modalities: dict, where: Path) -> None:
    """MoME segments single-channel CT; anything else is refused with what the file says."""
    values = [str(v) for v in modalities.values()]
    if len(values) > 1:
        raise ValueError(f"{where} describes {len(values)} channels ({', '.join(values)}); MoME trains on "
                         "single-channel CT")
    if values and values[0].strip().upper() != "CT":
        raise ValueError(f"{where} says the images are {values[0]}; MoME trains on CT")


def label_files(folder: Path) -> list[Path]:
    # "._*" are macOS resource forks, present in the decathlon's tar files.
    files = [p for pattern in NIFTI for p in folder.glob(pattern) if not p.name.startswith("._")]
    return sorted(files)


def case_id(path: Path) -> str:
    name = path.name
    for ext in (".nii.gz", ".nii", ".nrrd", ".mha"):
        if name.endswith(ext):
            return name[: -len(ext)]
    return path.stem


def import_msd(folder: Path, vocabulary: Vocabulary, *, name: str | None = None, preset: DatasetPreset | None = None,
               overrides=None, val_fraction: float = 0.1) -> ImportedDataset:
    folder = Path(folder)
    meta_path = folder / "dataset.json"
    meta = json.loads(meta_path.read_text()) if meta_path.is_file() else {}
    check_ct(meta.get("modality") or {}, meta_path)
    imported = ImportedDataset(name or (preset.key if preset else meta.get("name") or folder.name), [])
    imported.source = f"{preset.key if preset else 'msd'} {folder}"
    if preset is not None:
        imported.label_names, imported.label_map = preset_label_map(preset, vocabulary, overrides)
    elif meta.get("labels"):
        imported.label_names = {int(v): str(n) for v, n in meta["labels"].items()}
        imported.label_map = label_map_from_names(imported.label_names, vocabulary, meta.get("name", ""), overrides)
    else:
        raise ValueError(f"{folder} has no dataset.json with 'labels'; name the dataset's label convention with "
                         "--preset (see `mome data presets`)")
    imported.label_names.pop(0, None)

    found: list[tuple[str, Path, Path, str]] = []
    for suffix, split in SPLIT_FOLDERS:
        images, labels = folder / f"images{suffix}", folder / f"labels{suffix}"
        if not images.is_dir():
            continue
        if not labels.is_dir():
            imported.notes.append(f"images{suffix}/ has no labels{suffix}/: not imported (no labels to train on)")
            continue
        missing = []
        for image in label_files(images):
            label = labels / image.name
            if label.is_file():
                found.append((case_id(image), image, label, split))
            else:
                missing.append(image.name)
        if missing:
            imported.notes.append(f"{len(missing)} image(s) in images{suffix}/ have no label file: "
                                  f"{', '.join(missing[:5])}{' …' if len(missing) > 5 else ''}")
    if not found:
        raise ValueError(f"found no image/label pairs in {folder} (expected imagesTr/ and labelsTr/ with the same "
                         "file names)")
    finish_pairs(imported, found, preset, val_fraction)
    return imported


def finish_pairs(imported: ImportedDataset, found: list[tuple[str, Path, Path, str]],
                 preset: DatasetPreset | None, val_fraction: float) -> None:
    """Filter by the preset, decide splits, and add the cases (shared by the label-map layouts)."""
    if preset is not None and preset.keep is not None:
        kept = [f for f in found if preset.keep(f[0])]
        if len(kept) < len(found):
            imported.notes.append(f"skipped {len(found) - len(kept)} case(s) that preset {preset.key} excludes "
                                  f"({preset.note or 'see the preset'})")
        found = kept
    has_val = any(split == "val" for *_, split in found)
    fixed = {cid: preset.split(cid) for cid, *_ in found} if preset is not None and preset.split else {}
    free = [cid for cid, *_, split in found if split == "train" and not fixed.get(cid)]
    chosen = assign_splits(free, 0.0 if has_val else val_fraction)
    for cid, image, label, split in found:
        split = fixed.get(cid) or (chosen.get(cid, split) if split == "train" else split)
        imported.cases.append({"id": cid, "image": str(image), "labels": str(label), "split": split})
