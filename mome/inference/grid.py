"""The voxel grids inference works on, described by value (no pixel buffer).

SimpleITK conventions throughout: physical space is LPS in millimetres, ``size``/``spacing`` are in
index order (x, y, z), ``direction`` is the row-major 3×3 matrix whose column *i* is the direction
of index axis *i*, and numpy arrays on a grid are in array order (z, y, x).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import SimpleITK as sitk


@dataclass(frozen=True)
class VoxelGrid:
    size: tuple[int, int, int]
    spacing: tuple[float, float, float]
    origin: tuple[float, float, float]
    direction: tuple[float, ...]

    @classmethod
    def of(cls, image: sitk.Image) -> "VoxelGrid":
        return cls(
            size=tuple(int(s) for s in image.GetSize()),  # type: ignore[arg-type]
            spacing=tuple(float(s) for s in image.GetSpacing()),  # type: ignore[arg-type]
            origin=tuple(float(o) for o in image.GetOrigin()),  # type: ignore[arg-type]
            direction=tuple(float(d) for d in image.GetDirection()),
        )

    @property
    def array_shape(self) -> tuple[int, int, int]:
        """Shape of a numpy array on this grid: (z, y, x)."""
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

    def sub_grid(self, start_xyz: tuple[int, int, int], size_xyz: tuple[int, int, int]) -> "VoxelGrid":
        """The grid of the block of voxels ``start .. start+size-1`` (same spacing and direction)."""
        origin = self.index_to_physical(np.asarray(start_xyz, dtype=float))[0]
        return VoxelGrid(
            size=tuple(int(s) for s in size_xyz),  # type: ignore[arg-type]
            spacing=self.spacing,
            origin=tuple(float(o) for o in origin),  # type: ignore[arg-type]
            direction=self.direction,
        )

    def image_from_array(self, array_zyx: np.ndarray) -> sitk.Image:
        """Wrap a (z, y, x) array as a SimpleITK image on this grid (copies the buffer)."""
        if tuple(array_zyx.shape) != self.array_shape:
            raise ValueError(f"array of shape {array_zyx.shape} is not on a grid of (z, y, x) {self.array_shape}")
        image = sitk.GetImageFromArray(np.ascontiguousarray(array_zyx))
        self.apply_to(image)
        return image

    def apply_to(self, image: sitk.Image) -> None:
        image.SetSpacing(self.spacing)
        image.SetOrigin(self.origin)
        image.SetDirection(self.direction)

    def left_coordinate(self, index_zyx: np.ndarray) -> np.ndarray:
        """Position along the patient's right→left axis (LPS x, mm) of (z, y, x) voxel indices ``N×3``."""
        index_zyx = np.atleast_2d(np.asarray(index_zyx, dtype=float))
        return self.index_to_physical(index_zyx[:, ::-1])[:, 0]

    def center(self) -> np.ndarray:
        """Physical centre of the grid (LPS point)."""
        return self.index_to_physical((np.asarray(self.size, dtype=float) - 1) / 2)[0]
