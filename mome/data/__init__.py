"""Public dataset layouts → MoME manifests, and the manifest check: the ``mome data`` command.

    names.py             a dataset's label names → vocabulary keys (synonyms, sides, "tumour" in context)
    presets.py           label conventions and layouts of the paper's ten datasets, with their sources
    msd.py               Medical Segmentation Decathlon layout (dataset.json, imagesTr/, labelsTr/)
    nnunet.py            nnU-Net v2 raw layout (dataset.json labels name → value, <case>_0000 images)
    totalsegmentator.py  sNNNN/ct.nii.gz + segmentations/<name>.nii.gz, meta.csv splits
    pairs.py             image/label files paired by a pattern (BTCV, KiTS, LiTS, CT-ORG, …)
    openkbp.py           one OpenKBP patient (sparse CSVs, 128³ grid) → CT + masks (``mome sample``, recipes)
    imported.py          ImportedDataset (what every importer returns), helpers they share, writing manifests
    check.py             ``mome data check``: per-class case counts, problems, unmapped labels

Every importer returns one manifest dataset. A label it cannot map to a vocabulary class is kept in
the manifest as ``label_names``/``unmapped_masks`` and reported, never dropped silently.
"""

from __future__ import annotations

from pathlib import Path

from ..vocabulary import Vocabulary, load_vocabulary
from .imported import ImportedDataset, write_manifest
from .msd import import_msd
from .names import MappingError, parse_overrides
from .nnunet import import_nnunet
from .pairs import import_pairs
from .presets import PRESETS, DatasetPreset, Pairs, get_preset
from .totalsegmentator import import_totalsegmentator

FORMATS = {"msd": import_msd, "nnunet": import_nnunet, "totalsegmentator": import_totalsegmentator,
           "pairs": import_pairs}

__all__ = ["FORMATS", "PRESETS", "DatasetPreset", "ImportedDataset", "MappingError", "get_preset",
           "import_dataset", "parse_overrides", "write_manifest"]


def import_dataset(fmt: str, folder: str | Path, *, name: str | None = None, preset: str | None = None,
                   overrides: dict[str, str | None] | None = None, val_fraction: float = 0.1,
                   images: str | None = None, labels: str | None = None,
                   vocabulary: Vocabulary | None = None) -> ImportedDataset:
    """One dataset from ``folder`` in layout ``fmt`` (a format, or a preset name: its own layout)."""
    folder = Path(folder).expanduser()
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder} is not a folder")
    if not 0.0 <= val_fraction < 1.0:
        raise ValueError(f"--val-fraction must be in [0, 1), got {val_fraction}")
    vocabulary = vocabulary or load_vocabulary()
    options = dict(name=name, overrides=overrides, val_fraction=val_fraction)
    if fmt in FORMATS:
        chosen = get_preset(preset) if preset else None
        if fmt == "pairs":
            layout = Pairs((images,), (labels,)) if images and labels else None
            if (images is None) != (labels is None):
                raise ValueError("give both --images and --labels (or neither, to use the preset's layout)")
            return import_pairs(folder, vocabulary, preset=chosen, layout=layout, **options)
        return FORMATS[fmt](folder, vocabulary, preset=chosen, **options)
    chosen = get_preset(fmt)  # "mome data import kits DIR": the preset's labels and layout
    if preset and get_preset(preset) is not chosen:
        raise ValueError(f"{fmt} is itself a preset; --preset {preset} would contradict it")
    if chosen.layout == "msd":
        return import_msd(folder, vocabulary, preset=chosen, **options)
    if chosen.layout is None:
        raise ValueError(f"{chosen.title}: {chosen.note}")
    return import_pairs(folder, vocabulary, preset=chosen, **options)
