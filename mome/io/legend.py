"""The legend of a label map: which value is which structure, for 3D Slicer and ITK-SNAP.

A label map stores numbers only. Next to it MoME writes

* ``<name>.ctbl`` — a Slicer colour table ("Color table file" format: ``value name R G B A``, names
  with underscores for spaces; Slicer developer guide, *Colors* module). Load it in Slicer, then
  choose it as the label map's colour table (Volumes → Display → Lookup table);
* ``<name>.itksnap.txt`` — an ITK-SNAP label description file (``IDX R G B A VIS MSH "LABEL"``,
  alpha 0..1); in ITK-SNAP: Segmentation → Import Label Descriptions.

Both begin with comment lines that say where structures overlapped: in a label map each voxel holds
one value and a later prompt wins, so a liver tumour hides the liver voxels under it.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..vocabulary.codes import SegmentDescriptor
from .atomic import full_suffix

SLICER_SUFFIX = ".ctbl"
ITKSNAP_SUFFIX = ".itksnap.txt"


@dataclass(frozen=True)
class Overlap:
    """``voxels`` of segment ``hidden`` (0-based) carry the later segment ``shown``'s value."""

    hidden: int
    shown: int
    voxels: int


def legend_paths(labelmap: str | os.PathLike[str]) -> dict[str, Path]:
    """kind → sidecar path for a label map path (``labels.nii.gz`` → ``labels.ctbl`` …)."""
    path = Path(labelmap)
    stem = path.name[: len(path.name) - len(full_suffix(path))] or path.name
    return {"legend_slicer": path.with_name(stem + SLICER_SUFFIX),
            "legend_itksnap": path.with_name(stem + ITKSNAP_SUFFIX)}


def labelmap_overlaps(masks: Sequence[np.ndarray]) -> list[Overlap]:
    """Every (hidden, shown) pair of segments whose overlap the later one wins in a label map."""
    if not masks:
        return []
    winner = np.zeros(np.shape(masks[0]), dtype=np.int32)  # 1-based index of the last mask per voxel
    for index, mask in enumerate(masks):
        winner[mask] = index + 1
    found = []
    for index, mask in enumerate(masks):
        counts = np.bincount(winner[mask], minlength=len(masks) + 1)
        for shown in range(index + 1, len(masks)):
            if counts[shown + 1]:
                found.append(Overlap(index, shown, int(counts[shown + 1])))
    return found


def overlap_lines(segments: Sequence[SegmentDescriptor], overlaps: Sequence[Overlap]) -> list[str]:
    """One sentence per overlap, for the legends and the statistics."""
    return [f"{o.voxels} voxels of {segments[o.hidden].name} (value {o.hidden + 1}) hold value {o.shown + 1} "
            f"({segments[o.shown].name}): where structures overlap, the later prompt wins" for o in overlaps]


def write_slicer_color_table(path: str | os.PathLike[str], segments: Sequence[SegmentDescriptor],
                             notes: Sequence[str] = (), labelmap_name: str = "") -> Path:
    """A Slicer ``.ctbl`` colour table: value 0 background, value i+1 ``segments[i]``. ``notes``
    become comment lines; ``labelmap_name`` names the label map it describes."""
    of = f" for {labelmap_name}" if labelmap_name else ""
    lines = [f"# Color table file{of} (written by MoME)", f"# {len(segments) + 1} values"]
    lines += [f"# {note}" for note in notes]
    lines.append("0 Background 0 0 0 0")
    for index, segment in enumerate(segments):
        name = "_".join(segment.name.split()) or f"label_{index + 1}"
        lines.append(f"{index + 1} {name} {' '.join(str(int(c)) for c in segment.color)} 255")
    target = Path(path)
    target.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return target


def write_itksnap_labels(path: str | os.PathLike[str], segments: Sequence[SegmentDescriptor],
                         notes: Sequence[str] = (), labelmap_name: str = "") -> Path:
    """An ITK-SNAP label description file for the same values."""
    of = f" of {labelmap_name}" if labelmap_name else ""
    lines = ["################################################",
             "# ITK-SnAP Label Description File",
             "# File format: ",
             "# IDX   -R-  -G-  -B-  -A--  VIS MSH  LABEL",
             f"# Written by MoME: the structures{of}, value i for the i-th prompt.",
             *[f"# {note}" for note in notes],
             "################################################",
             '    0     0    0    0        0  0  0    "Clear Label"']
    for index, segment in enumerate(segments):
        r, g, b = (int(c) for c in segment.color)
        label = segment.name.replace('"', "'")
        lines.append(f"{index + 1:5d} {r:5d} {g:4d} {b:4d}        1  1  1    \"{label}\"")
    target = Path(path)
    target.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return target
