"""The voxel grid, described by value (no pixel buffer), and how two grids are compared.

SimpleITK conventions throughout: physical space is LPS in millimetres, ``size``/``spacing`` are in
index order (x, y, z), ``direction`` is the row-major 3×3 matrix whose column *i* is the direction
of index axis *i*, and numpy arrays on a grid are in SimpleITK array order (z, y, x).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Union

import numpy as np
import SimpleITK as sitk


class GeometryMismatchError(ValueError):
    """Two images (or masks and their reference) do not lie on the same voxel grid."""


@dataclass(frozen=True)
class Grid:
    """Size and physical placement of a 3D voxel grid, as SimpleITK defines them (LPS, mm)."""

    size: tuple[int, int, int]  # x, y, z (SimpleITK index order)
    spacing: tuple[float, float, float]
    origin: tuple[float, float, float]
    direction: tuple[float, ...]  # 3×3 row-major; column i is the direction of index axis i

    @classmethod
    def of(cls, image: Any) -> Grid:
        """The grid of ``image`` (a SimpleITK image, or an ``ImageFileReader`` after
        ``ReadImageInformation``: anything with SimpleITK's four geometry getters), or ``image``
        itself when it already is a grid."""
        if isinstance(image, Grid):
            return image
        return cls(
            size=tuple(int(s) for s in image.GetSize()),  # type: ignore[arg-type]
            spacing=tuple(float(s) for s in image.GetSpacing()),  # type: ignore[arg-type]
            origin=tuple(float(o) for o in image.GetOrigin()),  # type: ignore[arg-type]
            direction=tuple(float(d) for d in image.GetDirection()),
        )

    @classmethod
    def from_ijk_to_lps(cls, matrix: np.ndarray, size: tuple[int, int, int]) -> Grid:
        """The grid whose 4×4 homogeneous index→LPS matrix is ``matrix`` (NRRD, Slicer)."""
        axes = np.asarray(matrix, dtype=float)[:3, :3]
        spacing = np.linalg.norm(axes, axis=0)
        return cls(
            size=tuple(int(s) for s in size),  # type: ignore[arg-type]
            spacing=tuple(float(s) for s in spacing),  # type: ignore[arg-type]
            origin=tuple(float(o) for o in np.asarray(matrix, dtype=float)[:3, 3]),  # type: ignore[arg-type]
            direction=tuple(float(d) for d in (axes / spacing).ravel()),
        )

    @property
    def ijk_to_lps(self) -> np.ndarray:
        """4×4 homogeneous matrix from (x, y, z) voxel index to LPS position."""
        matrix = np.eye(4)
        matrix[:3, :3] = self.matrix * np.asarray(self.spacing)
        matrix[:3, 3] = self.origin
        return matrix

    @property
    def array_shape(self) -> tuple[int, int, int]:
        """Shape of a numpy array on this grid in SimpleITK array order (z, y, x)."""
        return (self.size[2], self.size[1], self.size[0])

    @property
    def matrix(self) -> np.ndarray:
        """3×3 direction matrix (columns = index axes)."""
        return np.asarray(self.direction, dtype=float).reshape(3, 3)

    def index_to_physical(self, index_xyz: np.ndarray) -> np.ndarray:
        """Continuous indices ``N×3`` (x, y, z order) → LPS points ``N×3``."""
        index_xyz = np.atleast_2d(np.asarray(index_xyz, dtype=float))
        return np.asarray(self.origin) + (index_xyz * np.asarray(self.spacing)) @ self.matrix.T

    def physical_to_index(self, points: np.ndarray) -> np.ndarray:
        """LPS points ``N×3`` → continuous indices ``N×3`` (x, y, z order)."""
        points = np.atleast_2d(np.asarray(points, dtype=float))
        # The direction matrix is orthonormal, so its transpose is its inverse.
        return ((points - np.asarray(self.origin)) @ self.matrix) / np.asarray(self.spacing)

    def sub_grid(self, start_xyz: tuple[int, int, int], size_xyz: tuple[int, int, int]) -> Grid:
        """The grid of the block of voxels ``start .. start+size-1`` (same spacing and direction)."""
        origin = self.index_to_physical(np.asarray(start_xyz, dtype=float))[0]
        return Grid(
            size=tuple(int(s) for s in size_xyz),  # type: ignore[arg-type]
            spacing=self.spacing,
            origin=tuple(float(o) for o in origin),  # type: ignore[arg-type]
            direction=self.direction,
        )

    def center(self) -> np.ndarray:
        """Physical centre of the grid (LPS point)."""
        return self.index_to_physical((np.asarray(self.size, dtype=float) - 1) / 2)[0]

    def left_coordinate(self, index_zyx: np.ndarray) -> np.ndarray:
        """Position along the patient's right→left axis (LPS x, mm) of (z, y, x) voxel indices ``N×3``."""
        index_zyx = np.atleast_2d(np.asarray(index_zyx, dtype=float))
        return self.index_to_physical(index_zyx[:, ::-1])[:, 0]

    def empty_image(self, pixel_type: int = sitk.sitkUInt8) -> sitk.Image:
        """A zero-filled image on this grid."""
        image = sitk.Image(list(self.size), pixel_type)
        self._place(image)
        return image

    def image_from_array(self, array_zyx: np.ndarray) -> sitk.Image:
        """Wrap a (z, y, x) array as a SimpleITK image on this grid (copies the buffer)."""
        if tuple(np.shape(array_zyx)) != self.array_shape:
            raise GeometryMismatchError(
                f"Array of shape {tuple(np.shape(array_zyx))} does not match the grid "
                f"(expected (z, y, x) = {self.array_shape})."
            )
        image = sitk.GetImageFromArray(np.ascontiguousarray(array_zyx))
        self._place(image)
        return image

    def _place(self, image: sitk.Image) -> None:
        image.SetSpacing(self.spacing)
        image.SetOrigin(self.origin)
        image.SetDirection(self.direction)


GridLike = Union[sitk.Image, Grid]


def same_grid(a: GridLike, b: GridLike, tol: float = 1e-5) -> bool:
    """True when both lie on the same voxel grid.

    Sizes must match exactly; spacing and origin up to ``tol`` relative (and absolute) error, so the
    float32 rounding of NIfTI headers does not count as a different grid; direction cosines up to
    ``tol`` absolute.
    """
    return not grid_differences(a, b, tol)


def assert_same_grid(a: GridLike, b: GridLike, tol: float = 1e-5, what: str = "image") -> None:
    """Raise :class:`GeometryMismatchError` naming what differs when the grids are not the same."""
    differences = grid_differences(a, b, tol)
    if differences:
        raise GeometryMismatchError(f"The {what} is not on the reference grid: " + "; ".join(differences))


def grid_differences(a: GridLike, b: GridLike, tol: float = 1e-5) -> list[str]:
    """What differs between the grids of ``a`` and ``b`` (empty when :func:`same_grid`)."""
    a, b = Grid.of(a), Grid.of(b)
    if len(a.size) != len(b.size):
        return [f"{len(a.size)}D vs {len(b.size)}D"]
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
