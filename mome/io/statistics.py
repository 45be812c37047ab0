"""Per-structure volume and intensity statistics, and writing them as CSV or JSON."""

from __future__ import annotations

import csv
import json
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import SimpleITK as sitk

from ..vocabulary.codes import SegmentDescriptor
from .masks import check_count, checked_masks

STATISTICS_SUFFIXES = (".csv", ".json")
STATISTICS_COLUMNS = ("key", "name", "voxel_count", "volume_ml", "mean_hu", "std_hu", "min_hu", "max_hu")


def structure_statistics(
    masks: Sequence[np.ndarray] | np.ndarray, image: sitk.Image, segments: Sequence[SegmentDescriptor]
) -> list[dict[str, Any]]:
    """One row per segment: voxel count, volume in mL and HU mean/std/min/max inside the mask.

    Intensity fields are None for empty masks. Volume uses the image spacing (mm³ / 1000).
    """
    arrays = checked_masks(masks, image)
    check_count(arrays, segments)
    values = sitk.GetArrayViewFromImage(image)
    voxel_ml = math.prod(image.GetSpacing()) / 1000.0
    rows = []
    for mask, segment in zip(arrays, segments, strict=True):
        inside = values[mask].astype(np.float64)
        count = int(inside.size)
        rows.append(
            {
                "key": segment.key,
                "name": segment.name,
                "voxel_count": count,
                "volume_ml": count * voxel_ml,
                "mean_hu": float(inside.mean()) if count else None,
                "std_hu": float(inside.std()) if count else None,
                "min_hu": float(inside.min()) if count else None,
                "max_hu": float(inside.max()) if count else None,
            }
        )
    return rows


def write_statistics(path: str | os.PathLike[str], rows: Sequence[dict[str, Any]]) -> Path:
    """Write statistics rows as ``.csv`` (one row per structure) or ``.json`` (a list of objects)."""
    target = Path(path)
    suffix = target.suffix.lower()
    if suffix not in STATISTICS_SUFFIXES:
        raise ValueError(f"Statistics path must end with .csv or .json; got {target.name}")
    if suffix == ".json":
        target.write_text(json.dumps(list(rows), indent=2) + "\n", encoding="utf-8")
    else:
        columns = list(STATISTICS_COLUMNS) + sorted({k for r in rows for k in r} - set(STATISTICS_COLUMNS))
        with target.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=columns)
            writer.writeheader()
            writer.writerows(rows)
    return target
