"""nnU-Net v2 raw layout: ``dataset.json`` (``channel_names``, ``labels`` name → value, ``file_ending``),
``imagesTr/<case>_0000<ending>`` with ``labelsTr/<case><ending>``.

Region labels (a name → list of values, for overlapping regions) cannot be one class each and are
listed as unmapped.
"""

from __future__ import annotations

import json
from pathlib import Path

from ..vocabulary import Vocabulary
from .imported import ImportedDataset, check_ct, finish_pairs, label_map_from_names, preset_label_map
from .presets import DatasetPreset


def import_nnunet(folder: Path, vocabulary: Vocabulary, *, name: str | None = None,
                  preset: DatasetPreset | None = None, overrides=None, val_fraction: float = 0.1) -> ImportedDataset:
    folder = Path(folder)
    meta_path = folder / "dataset.json"
    if not meta_path.is_file():
        raise ValueError(f"{folder} has no dataset.json; an nnU-Net raw dataset folder (DatasetNNN_Name) has one")
    meta = json.loads(meta_path.read_text())
    check_ct(meta.get("channel_names") or meta.get("modality") or {}, meta_path)
    ending = meta.get("file_ending", ".nii.gz")
    imported = ImportedDataset(name or (preset.key if preset else folder.name), [])
    imported.source = f"nnunet {folder}" + (f" --preset {preset.key}" if preset else "")
    if preset is not None:
        imported.label_names, imported.label_map = preset_label_map(preset, vocabulary, overrides)
    else:
        regions = [n for n, v in meta.get("labels", {}).items() if isinstance(v, (list, tuple))]
        if regions:
            imported.notes.append(f"region labels {regions} (several values each) are not classes: not mapped")
        imported.label_names = {int(v): str(n) for n, v in meta.get("labels", {}).items()
                                if not isinstance(v, (list, tuple)) and int(v) != 0}
        if not imported.label_names:
            raise ValueError(f"{meta_path} has no 'labels' (name → value); give the label convention with --preset")
        context = folder.name.split("_", 1)[1] if folder.name.startswith("Dataset") and "_" in folder.name else ""
        imported.label_map = label_map_from_names(imported.label_names, vocabulary, context, overrides)

    found = []
    images, labels = folder / "imagesTr", folder / "labelsTr"
    missing = []
    for image in sorted(images.glob(f"*_0000{ending}")):
        cid = image.name[: -len(f"_0000{ending}")]
        label = labels / f"{cid}{ending}"
        if label.is_file():
            found.append((cid, image, label, "train"))
        else:
            missing.append(image.name)
    if missing:
        imported.notes.append(f"{len(missing)} image(s) have no label in labelsTr/: {', '.join(missing[:5])}")
    if (folder / "imagesTs").is_dir():
        imported.notes.append("imagesTs/ has no labels in nnU-Net's layout: not imported")
    if not found:
        raise ValueError(f"found no imagesTr/<case>_0000{ending} with labelsTr/<case>{ending} in {folder}")
    finish_pairs(imported, found, preset, val_fraction)
    return imported
