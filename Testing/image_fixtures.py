"""Image helpers shared by the geometry tests of the engine and of the Slicer logic."""

from __future__ import annotations

import numpy as np
import SimpleITK as sitk


def rotated(image: sitk.Image, degrees_z: float = 20.0, degrees_x: float = 10.0) -> sitk.Image:
    """The same voxels with an oblique direction (a gantry-tilted / rotated acquisition)."""
    cz, sz = np.cos(np.radians(degrees_z)), np.sin(np.radians(degrees_z))
    cx, sx = np.cos(np.radians(degrees_x)), np.sin(np.radians(degrees_x))
    rotation = np.array([[cz, -sz, 0], [sz, cz, 0], [0, 0, 1]]) @ np.array([[1, 0, 0], [0, cx, -sx], [0, sx, cx]])
    out = sitk.Image(image)
    out.SetDirection(tuple((rotation @ np.asarray(image.GetDirection()).reshape(3, 3)).ravel()))
    return out
