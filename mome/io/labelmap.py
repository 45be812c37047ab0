"""Writing all segments as one label map volume (NRRD, NIfTI or MHA) on the reference grid."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from ..imaging import Grid
from .atomic import full_suffix
from .masks import checked_masks, to_label_map

LABELMAP_SUFFIXES = (".nrrd", ".nii", ".nii.gz", ".mha")


def write_labelmap(
    path: str | os.PathLike[str],
    masks: Sequence[np.ndarray] | np.ndarray,
    reference: sitk.Image,
    compress: bool = True,
) -> Path:
    """Write masks as labels 1..K (0 = background) with the reference's geometry; return the path.

    ``masks`` are (z, y, x) arrays on the reference grid. Where masks overlap the later one wins,
    so list containers before what they contain (liver, then liver tumour). The voxel type is
    uint8, or uint16 beyond 255 masks. The format follows the extension. For overlapping
    structures prefer :func:`mome.io.seg_nrrd.write_seg_nrrd`, which keeps every mask whole.
    """
    target = Path(path)
    suffix = full_suffix(target).lower()
    if suffix not in LABELMAP_SUFFIXES:
        hint = " (use write_seg_nrrd for Slicer segmentation files)" if suffix == ".seg.nrrd" else ""
        raise ValueError(f"Label map path must end with one of {', '.join(LABELMAP_SUFFIXES)}; got {target.name}{hint}")
    arrays = checked_masks(masks, reference)
    if not arrays:
        raise ValueError("No masks to write")
    labels = Grid.of(reference).image_from_array(to_label_map(arrays))
    sitk.WriteImage(labels, str(target), useCompression=compress)
    return target
