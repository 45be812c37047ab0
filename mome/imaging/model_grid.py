"""The model grid: the orientation and spacing a model works in, covering a CT's field of view.

Training (``mome.training.data``) and inference (``mome.inference.preprocess``) both resample onto
this grid, so the network sees the same kind of image in both; a flip between the two would swap
left and right organs.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import SimpleITK as sitk

from .grid import Grid


def oriented_direction(direction: Sequence[float], orientation: str) -> tuple[float, ...]:
    """The direction matrix an image with ``direction`` gets when its axes are permuted/flipped to
    ``orientation`` (DICOM/ITK letters, as MONAI and nibabel use them: ``RAS`` = x toward right).

    Like MONAI's ``Orientation`` this never rotates: an oblique scan keeps its obliquity.
    """
    probe = sitk.Image([2, 2, 2], sitk.sitkUInt8)
    probe.SetDirection(tuple(direction))
    return tuple(sitk.DICOMOrient(probe, orientation).GetDirection())


def model_grid(source: Grid, spacing: Sequence[float], orientation: str = "RAS") -> Grid:
    """The grid in ``orientation`` with ``spacing`` (x, y, z mm) that covers the same box as
    ``source``, centred on it."""
    direction = oriented_direction(source.direction, orientation)
    target = np.asarray(direction).reshape(3, 3)
    # Corners of the field of view (voxel edges, not centres) expressed along the new axes.
    size = np.asarray(source.size, dtype=float)
    corners = np.array([[c[0], c[1], c[2]] for c in np.ndindex(2, 2, 2)], dtype=float) * size - 0.5
    points = source.index_to_physical(corners)
    along = points @ target  # coordinates along the new (orthonormal) axes
    extent = along.max(axis=0) - along.min(axis=0)
    new_size = np.maximum(1, np.round(extent / np.asarray(spacing, dtype=float))).astype(int)
    center = points.mean(axis=0)
    origin = center - target @ ((new_size - 1) / 2 * np.asarray(spacing, dtype=float))
    return Grid(
        size=tuple(int(s) for s in new_size),  # type: ignore[arg-type]
        spacing=tuple(float(s) for s in spacing),  # type: ignore[arg-type]
        origin=tuple(float(o) for o in origin),  # type: ignore[arg-type]
        direction=direction,
    )
