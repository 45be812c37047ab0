"""The one resampler: an image onto another grid by physical position (identity transform)."""

from __future__ import annotations

import SimpleITK as sitk

from .grid import Grid, GridLike

INTERPOLATORS = {"nearest": sitk.sitkNearestNeighbor, "linear": sitk.sitkLinear}


def resample(image: sitk.Image, grid: GridLike, interpolator: str = "linear", default_value: float = 0.0,
             pixel_type: int | None = None) -> sitk.Image:
    """``image`` resampled onto ``grid`` (a :class:`Grid` or a reference image).

    Use ``"nearest"`` for label maps (keeps label values), ``"linear"`` for intensities and for
    binary masks that are thresholded afterwards. Points outside ``image`` get ``default_value``.
    The pixel type of ``image`` is kept unless ``pixel_type`` is given.

    No anti-aliasing before down-sampling, on purpose: MONAI's ``Spacingd`` in the training
    pipeline does none either, and the model should see the same kind of image in use.
    """
    if interpolator not in INTERPOLATORS:
        raise ValueError(f"interpolator must be one of {sorted(INTERPOLATORS)}, got {interpolator!r}")
    target = Grid.of(grid)
    return sitk.Resample(
        image, list(target.size), sitk.Transform(), INTERPOLATORS[interpolator], target.origin, target.spacing,
        target.direction, float(default_value), image.GetPixelID() if pixel_type is None else pixel_type,
    )
