"""Medical Segmentation Decathlon layout: ``dataset.json``, ``imagesTr/`` with ``labelsTr/`` of the same
file names (also WORD's ``imagesVal``/``imagesTs`` and AMOS22's ``imagesVa`` folders).

``dataset.json`` gives the modality and ``labels`` (value → name); a preset gives them instead when the
dataset has no such file, or names its labels ambiguously.
"""

from __future__ import annotations

import json
from pathlib import Path

from ..vocabulary import Vocabulary
from .imported import ImportedDataset, case_id, check_ct, finish_pairs, label_map_from_names, preset_label_map
from .presets import DatasetPreset

# Image folder suffix -> split. "Tr" becomes train (and val, by --val-fraction, unless a val folder exists).
SPLIT_FOLDERS = (("Tr", "train"), ("Va", "val"), ("Val", "val"), ("Ts", "test"))
NIFTI = ("*.nii.gz", "*.nii", "*.nrrd", "*.mha")


def volume_files(folder: Path) -> list[Path]:
    # "._*" are macOS resource forks, present in the decathlon's tar files.
    files = [p for pattern in NIFTI for p in folder.glob(pattern) if not p.name.startswith("._")]
    return sorted(files)


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
        for image in volume_files(images):
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
