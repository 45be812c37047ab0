"""Checking and combining the per-structure boolean masks that every writer receives.

Masks are numpy arrays in SimpleITK array order (z, y, x) on the reference image grid, one per
segment, in the order of the segment descriptors.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..imaging import GeometryMismatchError, Grid, GridLike


def checked_masks(masks: Sequence[np.ndarray] | np.ndarray, reference: GridLike) -> list[np.ndarray]:
    """The masks as a list of (z, y, x) boolean arrays, after checking their shape.

    Any non-zero value counts as inside, so uint8 0/1 masks work as well as booleans. Boolean
    input is not copied: a whole-body result can hold a hundred full-size masks, and one stacked
    copy of them all would cost gigabytes.
    """
    grid = Grid.of(reference)
    arrays = list(masks)
    for index, array in enumerate(arrays):
        if tuple(np.shape(array)) != grid.array_shape:
            raise GeometryMismatchError(
                f"Mask {index} has shape {tuple(np.shape(array))} but the reference grid needs "
                f"(z, y, x) = {grid.array_shape} (SimpleITK array order)."
            )
    return [a if isinstance(a, np.ndarray) and a.dtype == bool else np.asarray(a) != 0 for a in arrays]


def check_count(masks: Sequence[np.ndarray], segments: Sequence[object]) -> None:
    """Every mask needs exactly one segment description, and vice versa."""
    if len(masks) != len(segments):
        raise ValueError(f"Got {len(masks)} masks but {len(segments)} segment descriptions; they must match.")


def label_dtype(count: int) -> type[np.unsignedinteger]:
    """Smallest unsigned type holding labels 1..count (uint8 up to 255 segments)."""
    return np.uint8 if count <= 255 else np.uint16


def to_label_map(masks: Sequence[np.ndarray]) -> np.ndarray:
    """Label value index+1 per (non-empty list of) boolean masks; where masks overlap the later one wins."""
    labels = np.zeros(np.shape(masks[0]), dtype=label_dtype(len(masks)))
    for index, mask in enumerate(masks):
        labels[mask] = index + 1
    return labels


def assign_layers(masks: Sequence[np.ndarray]) -> list[int]:
    """Greedy layer per mask so that no two masks in one layer share a voxel.

    Non-overlapping segmentations get a single layer (a plain 3D label map); an organ with a
    tumour inside gets two, which is how Slicer stores overlapping segments.
    """
    occupied: list[np.ndarray] = []
    layers = []
    for mask in masks:
        for layer, used in enumerate(occupied):
            if not np.any(used & mask):
                used |= mask
                layers.append(layer)
                break
        else:
            occupied.append(mask.copy())
            layers.append(len(occupied) - 1)
    return layers
