"""TotalSegmentator dataset layout: ``sNNNN/ct.nii.gz`` with one mask per structure in
``sNNNN/segmentations/<name>.nii.gz``, and ``meta.csv`` (``;``-separated, with ``image_id`` and
``split``: train / val / test). Every case annotates every structure (an absent one has an empty mask).
"""

from __future__ import annotations

import csv
from pathlib import Path

from ..vocabulary import Vocabulary
from .imported import ImportedDataset, assign_splits, case_id
from .names import resolve_names


def read_splits(meta: Path) -> dict[str, str]:
    with meta.open(newline="") as f:
        sample = f.read(4096)
        f.seek(0)
        rows = csv.DictReader(f, delimiter=";" if sample.count(";") >= sample.count(",") else ",")
        return {r["image_id"].strip(): r["split"].strip() for r in rows if r.get("image_id") and r.get("split")}


def import_totalsegmentator(folder: Path, vocabulary: Vocabulary, *, name: str | None = None, preset=None,
                            overrides=None, val_fraction: float = 0.1) -> ImportedDataset:
    folder = Path(folder)
    if preset is not None:
        raise ValueError("the TotalSegmentator layout names its structures by file; it takes no --preset")
    case_dirs = sorted(p for p in folder.iterdir() if p.is_dir() and (p / "ct.nii.gz").is_file())
    if not case_dirs:
        raise ValueError(f"found no <case>/ct.nii.gz below {folder} (TotalSegmentator layout: sNNNN/ct.nii.gz and "
                         "sNNNN/segmentations/<structure>.nii.gz)")
    imported = ImportedDataset(name or "totalsegmentator", [], source=f"totalsegmentator {folder}")
    names = sorted({case_id(p) for d in case_dirs for p in (d / "segmentations").glob("*.nii*")})
    keys = resolve_names(names, vocabulary, overrides=overrides)
    owner: dict[str, str] = {}
    for n in names:  # two file names for one class (it happens across dataset versions): keep the first
        if keys[n] is not None and owner.setdefault(keys[n], n) != n:
            imported.notes.append(f"{n} and {owner[keys[n]]} both mean {keys[n]}: {n} is not imported")
            keys[n] = None
    imported.unmapped_masks = [n for n in names if keys[n] is None]

    meta = folder / "meta.csv"
    splits = read_splits(meta) if meta.is_file() else {}
    if not splits:
        imported.notes.append(f"no meta.csv with splits: {val_fraction:.0%} of the cases are val, by id")
        splits = assign_splits([d.name for d in case_dirs], val_fraction)
    unknown_split = 0
    for d in case_dirs:
        split = splits.get(d.name)
        if split not in ("train", "val", "test"):
            unknown_split += 1
            split = "train"
        masks = {keys[case_id(p)]: str(p) for p in sorted((d / "segmentations").glob("*.nii*"))
                 if keys.get(case_id(p))}
        if masks:
            imported.cases.append({"id": d.name, "image": str(d / "ct.nii.gz"), "masks": masks, "split": split})
    if unknown_split:
        imported.notes.append(f"{unknown_split} case(s) are not in meta.csv's splits: put in train")
    return imported
