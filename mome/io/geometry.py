"""Voxel-grid comparisons, copies and resampling (SimpleITK images, physical LPS space)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import SimpleITK as sitk

from mome.io.errors import GeometryMismatchError

_INTERPOLATORS = {"nearest": sitk.sitkNearestNeighbor, "linear": sitk.sitkLinear}


@dataclass(frozen=True)
class Grid:
    """Size and physical placement of a 3D voxel grid, as SimpleITK defines them (LPS, mm)."""

    size: tuple[int, int, int]  # x, y, z (SimpleITK index order)
    spacing: tuple[float, float, float]
    origin: tuple[float, float, float]
    direction: tuple[float, ...]  # 3x3 row-major; column i is the direction of index axis i

    @classmethod
    def of(cls, image: sitk.Image) -> Grid:
        """The grid of ``image``."""
        return cls(
            size=tuple(int(s) for s in image.GetSize()),
            spacing=tuple(float(s) for s in image.GetSpacing()),
            origin=tuple(float(o) for o in image.GetOrigin()),
            direction=tuple(float(d) for d in image.GetDirection()),
        )

    @property
    def array_shape(self) -> tuple[int, int, int]:
        """Shape of a numpy array on this grid in SimpleITK array order (z, y, x)."""
        return (self.size[2], self.size[1], self.size[0])

    def empty_image(self, pixel_type: int = sitk.sitkUInt8) -> sitk.Image:
        """A zero-filled image on this grid."""
        image = sitk.Image(list(self.size), pixel_type)
        image.SetSpacing(self.spacing)
        image.SetOrigin(self.origin)
        image.SetDirection(self.direction)
        return image


def same_grid(a: sitk.Image | Grid, b: sitk.Image | Grid, tol: float = 1e-5) -> bool:
    """True when both lie on the same voxel grid.

    Sizes must match exactly; spacing and origin up to ``tol`` relative (and absolute) error, so the
    float32 rounding of NIfTI headers does not count as a different grid; direction cosines up to
    ``tol`` absolute.
    """
    return not _grid_differences(_grid(a), _grid(b), tol)


def assert_same_grid(a: sitk.Image | Grid, b: sitk.Image | Grid, tol: float = 1e-5, what: str = "image") -> None:
    """Raise :class:`GeometryMismatchError` naming what differs when the grids are not the same."""
    differences = _grid_differences(_grid(a), _grid(b), tol)
    if differences:
        raise GeometryMismatchError(f"The {what} is not on the reference grid: " + "; ".join(differences))


def copy_grid(src: sitk.Image | Grid, pixel_type: int = sitk.sitkUInt8) -> sitk.Image:
    """A new zero-filled image with exactly the size, spacing, origin and direction of ``src``."""
    return _grid(src).empty_image(pixel_type)


def image_from_array(array: np.ndarray, reference: sitk.Image | Grid) -> sitk.Image:
    """Wrap a (z, y, x) numpy array as an image with the reference's exact geometry."""
    grid = _grid(reference)
    if tuple(array.shape) != grid.array_shape:
        raise GeometryMismatchError(
            f"Array of shape {tuple(array.shape)} does not match the reference grid "
            f"(expected (z, y, x) = {grid.array_shape})."
        )
    image = sitk.GetImageFromArray(np.ascontiguousarray(array))
    image.SetSpacing(grid.spacing)
    image.SetOrigin(grid.origin)
    image.SetDirection(grid.direction)
    return image


def resample_to_reference(
    image: sitk.Image, reference: sitk.Image | Grid, interpolator: str = "nearest", default_value: float = 0.0
) -> sitk.Image:
    """Resample ``image`` onto the reference grid by physical position (identity transform).

    Use ``"nearest"`` for label maps and masks (keeps label values), ``"linear"`` for intensities.
    Voxels outside ``image`` get ``default_value``. The pixel type of ``image`` is kept.
    """
    if interpolator not in _INTERPOLATORS:
        raise ValueError(f"interpolator must be one of {sorted(_INTERPOLATORS)}, got {interpolator!r}")
    target = reference if isinstance(reference, sitk.Image) else reference.empty_image()
    return sitk.Resample(
        image, target, sitk.Transform(), _INTERPOLATORS[interpolator], default_value, image.GetPixelID()
    )


def _grid(value: sitk.Image | Grid) -> Grid:
    return value if isinstance(value, Grid) else Grid.of(value)


def _grid_differences(a: Grid, b: Grid, tol: float) -> list[str]:
    differences = []
    if a.size != b.size:
        differences.append(f"size {a.size} vs {b.size}")
    if not np.allclose(a.spacing, b.spacing, rtol=tol, atol=tol):
        differences.append(f"spacing {a.spacing} vs {b.spacing}")
    if not np.allclose(a.origin, b.origin, rtol=tol, atol=tol):
        differences.append(f"origin {a.origin} vs {b.origin}")
    if not np.allclose(a.direction, b.direction, rtol=0.0, atol=tol):
        differences.append(f"direction {a.direction} vs {b.direction}")
    return differences
