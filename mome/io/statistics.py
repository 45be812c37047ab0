"""Per-structure volume and intensity statistics, and writing them as CSV or JSON.

Every row carries the structure's label-map value, so the CSV is the label map's legend too, and
says how many of its voxels keep that value in a label map (where structures overlap, a later
prompt wins). Numbers are rounded to what they can mean: volumes to 0.01 mL, HU to 0.1.
"""

from __future__ import annotations

import csv
import json
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import SimpleITK as sitk

from ..vocabulary.codes import SegmentDescriptor
from .legend import labelmap_overlaps
from .masks import check_count, checked_masks

STATISTICS_SUFFIXES = (".csv", ".json")
STATISTICS_COLUMNS = ("label_value", "key", "name", "status", "voxel_count", "volume_ml", "mean_hu", "std_hu",
                      "min_hu", "max_hu", "labelmap_voxels", "labelmap_note", "evidence")
VOLUME_DECIMALS = 2
HU_DECIMALS = 1


def structure_statistics(
    masks: Sequence[np.ndarray] | np.ndarray,
    image: sitk.Image,
    segments: Sequence[SegmentDescriptor],
    annotations: Sequence[Mapping[str, Any]] | None = None,
) -> list[dict[str, Any]]:
    """One row per segment: label value, voxel count, volume in mL, HU mean/std/min/max inside the
    mask, and how many voxels keep the label value in a label map (with a note when fewer do).

    Intensity fields are None for empty masks. Volume uses the image spacing (mm³ / 1000).
    ``annotations[i]`` (e.g. ``status`` and ``evidence``) is added to row i.
    """
    arrays = checked_masks(masks, image)
    check_count(arrays, segments)
    if annotations is not None and len(annotations) != len(segments):
        raise ValueError("annotations needs one entry per segment")
    values = sitk.GetArrayViewFromImage(image)
    voxel_ml = math.prod(image.GetSpacing()) / 1000.0
    hidden = {index: 0 for index in range(len(arrays))}
    winners: dict[int, list[str]] = {index: [] for index in range(len(arrays))}
    for overlap in labelmap_overlaps(arrays):
        hidden[overlap.hidden] += overlap.voxels
        winners[overlap.hidden].append(f"{overlap.voxels} under {segments[overlap.shown].name} "
                                       f"(value {overlap.shown + 1})")
    rows = []
    for index, (mask, segment) in enumerate(zip(arrays, segments, strict=True)):
        inside = values[mask].astype(np.float64)
        count = int(inside.size)
        row: dict[str, Any] = {
            "label_value": index + 1,
            "key": segment.key,
            "name": segment.name,
            "voxel_count": count,
            "volume_ml": round(count * voxel_ml, VOLUME_DECIMALS),
            "mean_hu": round(float(inside.mean()), HU_DECIMALS) if count else None,
            "std_hu": round(float(inside.std()), HU_DECIMALS) if count else None,
            "min_hu": _plain(inside.min()) if count else None,
            "max_hu": _plain(inside.max()) if count else None,
            "labelmap_voxels": count - hidden[index],
            "labelmap_note": ("; ".join(winners[index]) + ": in a label map a later prompt wins where structures "
                              "overlap") if winners[index] else "",
        }
        row.update(annotations[index] if annotations is not None else {})
        rows.append(row)
    return rows


def _plain(value: float) -> float | int:
    """An integral HU value as an int (int16 CTs), anything else to 0.1 HU."""
    return int(value) if float(value).is_integer() else round(float(value), HU_DECIMALS)


def write_statistics(path: str | os.PathLike[str], rows: Sequence[dict[str, Any]]) -> Path:
    """Write statistics rows as ``.csv`` (one row per structure) or ``.json`` (a list of objects)."""
    target = Path(path)
    suffix = target.suffix.lower()
    if suffix not in STATISTICS_SUFFIXES:
        raise ValueError(f"Statistics path must end with .csv or .json; got {target.name}")
    if suffix == ".json":
        target.write_text(json.dumps(list(rows), indent=2, allow_nan=False) + "\n", encoding="utf-8")
    else:
        present = {k for r in rows for k in r}
        columns = [c for c in STATISTICS_COLUMNS if c in present] + sorted(present - set(STATISTICS_COLUMNS))
        with target.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=columns)
            writer.writeheader()
            writer.writerows(rows)
    return target
