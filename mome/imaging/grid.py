"""Reorientation + resampling to the model grid, with SimpleITK (exact, geometry-aware)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import SimpleITK as sitk

_INTERPOLATORS = {"linear": sitk.sitkLinear, "nearest": sitk.sitkNearestNeighbor, "bspline": sitk.sitkBSpline}


def to_model_grid(
    image: sitk.Image,
    spacing: Sequence[float],
    orientation: str = "RAS",
    interpolator: str = "linear",
    default_value: float = -1024.0,
) -> sitk.Image:
    """Reorient (axis permutation/flip only, no interpolation) then resample to ``spacing`` (x, y, z mm).

    The resampled grid starts at the same physical corner and covers the same extent, so nothing of
    the input is cut off. ``orientation`` uses SimpleITK's ``DICOMOrient`` convention.
    """
    oriented = sitk.DICOMOrient(image, orientation)
    old_spacing = np.array(oriented.GetSpacing())
    old_size = np.array(oriented.GetSize())
    new_spacing = np.array(spacing, dtype=float)
    new_size = np.maximum(1, np.round(old_size * old_spacing / new_spacing)).astype(int)
    # Keep the outer edge of the first voxel fixed: centre shifts by half the spacing change.
    direction = np.array(oriented.GetDirection()).reshape(3, 3)
    shift = direction @ ((new_spacing - old_spacing) / 2.0)
    origin = np.array(oriented.GetOrigin()) + shift
    return sitk.Resample(
        oriented,
        [int(s) for s in new_size],
        sitk.Transform(),
        _INTERPOLATORS[interpolator],
        origin.tolist(),
        new_spacing.tolist(),
        oriented.GetDirection(),
        default_value,
        oriented.GetPixelID(),
    )


def intensity_to_unit(hu: np.ndarray, window: Sequence[float]) -> np.ndarray:
    """Clip HU to ``window`` and scale to [0, 1] (float32)."""
    lo, hi = float(window[0]), float(window[1])
    return ((np.clip(hu.astype(np.float32), lo, hi) - lo) / (hi - lo)).astype(np.float32)
