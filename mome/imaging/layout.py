"""SimpleITK array order ↔ the network's array layout: the one place the axes are swapped.

SimpleITK (and every numpy array on a :class:`~mome.imaging.Grid`) stores a volume as (z, y, x);
MONAI, and so the network, keeps index x as the first array axis: (x, y, z). Both directions are the
same axis reversal; two names keep each call site readable.
"""

from __future__ import annotations

import numpy as np
import SimpleITK as sitk


def to_network_layout(array_zyx: np.ndarray) -> np.ndarray:
    """A (z, y, x) array as (x, y, z) (a view: wrap in ``np.ascontiguousarray`` to copy)."""
    return array_zyx.transpose(2, 1, 0)


def from_network_layout(array_xyz: np.ndarray) -> np.ndarray:
    """An (x, y, z) network array as (z, y, x), the order of SimpleITK and the grid (a view)."""
    return array_xyz.transpose(2, 1, 0)


def network_array(image: sitk.Image) -> np.ndarray:
    """The voxels of ``image`` in the network's (x, y, z) layout (a copy of the buffer, transposed)."""
    return to_network_layout(sitk.GetArrayFromImage(image))
