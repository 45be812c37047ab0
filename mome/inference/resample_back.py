"""Model-grid probabilities → masks on the input image's own grid.

Preprocessing only ever moved, resampled and cropped voxels in physical space (``preprocess.py``),
so undoing all of it is one physical-space resampling *onto the input grid itself*: the output
has the input's size, spacing, origin and direction by construction, whatever its orientation
(RAS NIfTI, LPS NRRD/DICOM, oblique). Probabilities are interpolated linearly and thresholded
afterwards, which gives smoother masks than nearest-neighbour resampling of binary masks.

Only the bounding box a class can reach is resampled: a linearly interpolated value can reach the
threshold only within one model voxel of a voxel that does, so that box (grown by one voxel) is
mapped to the input grid and everything outside it stays empty. This bounds time and memory by
the structure's size, not the scan's.
"""

from __future__ import annotations

import numpy as np
import SimpleITK as sitk

from ..imaging import Grid, bounding_box, resample


def source_box(grid: Grid, box: tuple[slice, ...], source: Grid) -> tuple[np.ndarray, np.ndarray] | None:
    """The (x, y, z) start and size of the block of ``source`` voxels covering ``box`` of ``grid``."""
    low = np.array([box[2].start, box[1].start, box[0].start], dtype=float)
    high = np.array([box[2].stop - 1, box[1].stop - 1, box[0].stop - 1], dtype=float)
    corners = np.array([[(low, high)[c][a] for a, c in enumerate(combo)] for combo in np.ndindex(2, 2, 2)])
    index = source.physical_to_index(grid.index_to_physical(corners))
    start = np.maximum(0, np.floor(index.min(axis=0))).astype(int)
    stop = np.minimum(np.asarray(source.size), np.ceil(index.max(axis=0)) + 1).astype(int)
    if np.any(stop <= start):
        return None  # the structure lies outside the input's field of view
    return start, stop - start


def _resample_block(probabilities: np.ndarray, grid: Grid, box: tuple[slice, ...], target: Grid) -> np.ndarray:
    """Linear resampling of ``probabilities[box]`` onto ``target``: a float32 (z, y, x) array."""
    block = np.ascontiguousarray(probabilities[box])
    start = (box[2].start, box[1].start, box[0].start)
    image = grid.sub_grid(start, block.shape[::-1]).image_from_array(block)
    return sitk.GetArrayFromImage(resample(image, target, "linear", 0.0, sitk.sitkFloat32))


def mask_on_source(probabilities: np.ndarray, grid: Grid, source: Grid, level: int) -> np.ndarray:
    """Threshold-after-resampling of one class: uint8 probabilities (z, y, x) on ``grid`` → boolean
    (z, y, x) mask on ``source``. A voxel is inside when its interpolated value, rounded half up to a
    uint8 step (as :func:`probabilities_on_source` stores it), is ≥ ``level``; so the mask always
    equals ``probabilities_on_source(...) >= level``."""
    out = np.zeros(source.array_shape, dtype=bool)
    found = _reachable_values(probabilities, grid, source, level)
    if found is not None:
        values, block = found
        out[block] = values >= level - 0.5
    return out


def probabilities_on_source(probabilities: np.ndarray, grid: Grid, source: Grid) -> np.ndarray:
    """uint8 probabilities (×255) of one class resampled linearly onto ``source``; zero outside ``grid``."""
    out = np.zeros(source.array_shape, dtype=np.uint8)
    found = _reachable_values(probabilities, grid, source, 1)
    if found is not None:
        values, block = found
        out[block] = np.clip(np.floor(values + 0.5), 0, 255).astype(np.uint8)  # half up, as the mask's threshold
    return out


def _reachable_values(probabilities: np.ndarray, grid: Grid, source: Grid,
                      level: int) -> tuple[np.ndarray, tuple[slice, ...]] | None:
    """The interpolated values on the block of ``source`` that voxels ``>= level`` can reach, with
    that block's (z, y, x) slices; None when there are no such voxels or they lie outside ``source``."""
    # Grown by one voxel: interpolation reaches one model voxel beyond the thresholded ones.
    box = bounding_box(probabilities >= level, margin=1)
    if box is None:
        return None
    placed = source_box(grid, box, source)
    if placed is None:
        return None
    start, size = placed
    values = _resample_block(probabilities, grid, box, source.sub_grid(tuple(start), tuple(size)))
    return values, tuple(slice(int(start[a]), int(start[a] + size[a])) for a in (2, 1, 0))
