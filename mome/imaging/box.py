"""Bounding boxes as the numpy slices that crop them: of one mask, or of every label of a label map."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import ndimage


def bounding_box(mask: np.ndarray, margin: int | Sequence[int] = 0) -> tuple[slice, ...] | None:
    """Slices (in the array's axis order) of the non-zero voxels of ``mask``, grown by ``margin``
    voxels (one number, or one per axis) and clipped to the array; None when ``mask`` is empty."""
    labels = mask.view(np.uint8) if mask.dtype == bool else (mask != 0).view(np.uint8)
    boxes = ndimage.find_objects(labels, max_label=1)
    if not boxes or boxes[0] is None:
        return None
    margins = np.broadcast_to(np.asarray(margin, dtype=int), (mask.ndim,))
    return tuple(
        slice(max(0, s.start - int(m)), min(n, s.stop + int(m))) for s, m, n in zip(boxes[0], margins, mask.shape)
    )


def label_boxes(labels: np.ndarray, max_label: int) -> list[tuple[slice, ...] | None]:
    """Bounding box of each label value ``1..max_label`` of an integer label map (None where the
    label is absent), in one pass over the array instead of one per label."""
    boxes = ndimage.find_objects(labels, max_label=max_label)
    return list(boxes) + [None] * (max_label - len(boxes))
