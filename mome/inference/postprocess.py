"""Anatomical clean-up of the thresholded masks, by class kind. Each step can be switched off.

Run on the model grid (isotropic, RAS), in this order:

1. **Lung sides**: left/right lungs (and lobes) are split by side. The connected components of
   their union go to the side of the body midline their centre lies on; a component straddling
   the midline (lungs touching at the anterior junction) is cut along the midline plane.
2. **Largest component** for organs: one liver, one spleen — except for bowel, which gas
   legitimately interrupts.
3. **Lesions inside their organ**: a tumour or cyst keeps only voxels within a few voxels of its
   parent organ(s), when a parent organ was segmented in the same run.

Masks are (z, y, x) boolean arrays on ``grid``. :func:`constrain_probabilities` then turns the
cleaned masks back into probabilities, so that resampling to the input grid stays smooth.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np
from scipy import ndimage

from ..imaging import Grid, bounding_box

#: Organs whose lumen gas splits them into several pieces on CT: keeping one piece would be wrong.
MULTI_PART_ORGANS = frozenset({"colon", "small_bowel", "duodenum"})
LESION_KINDS = frozenset({"tumor", "cyst"})
WHOLE_LUNGS = frozenset({"lung_left", "lung_right"})
#: A component with at least this share of its voxels on each side of the midline is cut in two.
STRADDLE_FRACTION = 0.2

_FULL_CONNECTIVITY = np.ones((3, 3, 3), dtype=bool)  # 26-neighbourhood: thin bridges stay connected


class TargetLike(Protocol):
    key: str
    kind: str
    parents: tuple[str, ...]
    laterality: str | None


@dataclass(frozen=True)
class PostprocessOptions:
    enabled: bool = True
    largest_component: bool = True
    lesions_in_organ: bool = True
    lung_split: bool = True
    threshold: float = 0.5  # probability at and above which a voxel is inside
    lesion_margin_voxels: float = 5.0  # radius of the ball the parent organ is dilated by

    @property
    def level(self) -> int:
        """The threshold on uint8 probabilities (p × 255, rounded)."""
        return int(min(255, max(1, round(self.threshold * 255))))


def postprocess_masks(masks: Sequence[np.ndarray], targets: Sequence[TargetLike], grid: Grid,
                      options: PostprocessOptions = PostprocessOptions(),
                      midline: float | None = None) -> tuple[list[np.ndarray], list[str]]:
    """Apply the enabled steps; return new masks (inputs are not modified) and notes on what changed.

    ``midline`` is the LPS x (mm) of the body's mid-sagittal plane; the grid centre when omitted.
    """
    out = [np.asarray(m, dtype=bool) for m in masks]
    notes: list[str] = []
    if not options.enabled:
        return out, notes
    index = {t.key: i for i, t in enumerate(targets)}
    midline = float(grid.center()[0]) if midline is None else float(midline)

    if options.lung_split:
        notes += _split_lungs(out, targets, index, grid, midline)
    if options.largest_component:
        for i, t in enumerate(targets):
            if t.kind == "organ" and t.key not in MULTI_PART_ORGANS:
                kept = largest_component(out[i])
                removed = int(out[i].sum() - kept.sum())
                if removed:
                    notes.append(f"{t.key}: kept the largest connected part, dropped {removed} voxels elsewhere")
                out[i] = kept
    if options.lesions_in_organ:
        for i, t in enumerate(targets):
            parents = [index[p] for p in t.parents if p in index]
            if t.kind in LESION_KINDS and parents:
                organ = np.logical_or.reduce([out[p] for p in parents])
                kept = out[i] & dilate_ball(organ, options.lesion_margin_voxels)
                removed = int(out[i].sum() - kept.sum())
                if removed:
                    notes.append(f"{t.key}: dropped {removed} voxels outside its organ")
                out[i] = kept
    return out, notes


def largest_component(mask: np.ndarray) -> np.ndarray:
    """The largest 26-connected component of ``mask`` (empty stays empty)."""
    box = bounding_box(mask)
    if box is None:
        return mask.copy()
    labels, count = ndimage.label(mask[box], structure=_FULL_CONNECTIVITY)
    out = np.zeros_like(mask, dtype=bool)
    if count <= 1:
        out[box] = mask[box]
        return out
    sizes = np.bincount(labels.ravel())
    sizes[0] = 0
    out[box] = labels == int(np.argmax(sizes))
    return out


def dilate_ball(mask: np.ndarray, radius: float) -> np.ndarray:
    """``mask`` grown by a Euclidean ball of ``radius`` voxels, computed only around the mask."""
    box = bounding_box(mask, margin=int(np.ceil(radius)))
    out = np.zeros_like(mask, dtype=bool)
    if box is None:
        return out
    # Distance of every voxel of the padded box to the nearest mask voxel (all mask voxels lie inside).
    distance = ndimage.distance_transform_edt(~mask[box])
    out[box] = distance <= radius
    return out


def side_regions(union: np.ndarray, grid: Grid, midline: float) -> tuple[np.ndarray, np.ndarray]:
    """Split ``union`` into (left, right) by whole connected components, cutting only straddlers."""
    left = np.zeros_like(union, dtype=bool)
    right = np.zeros_like(union, dtype=bool)
    box = bounding_box(union)
    if box is None:
        return left, right
    offset = np.array([s.start for s in box])
    labels, count = ndimage.label(union[box], structure=_FULL_CONNECTIVITY)
    for component, where in enumerate(ndimage.find_objects(labels), start=1):
        voxels = np.argwhere(labels[where] == component) + offset + np.array([s.start for s in where])
        is_left = grid.left_coordinate(voxels) > midline  # LPS x grows toward the patient's left
        share = is_left.mean()
        if min(share, 1 - share) >= STRADDLE_FRACTION:
            chosen = is_left  # a bridge across the midline: cut voxel by voxel
        else:
            chosen = np.full(len(voxels), share >= 0.5)
        z, y, x = voxels.T
        left[z[chosen], y[chosen], x[chosen]] = True
        right[z[~chosen], y[~chosen], x[~chosen]] = True
    return left, right


def _split_lungs(masks: list[np.ndarray], targets: Sequence[TargetLike], index: dict[str, int],
                 grid: Grid, midline: float) -> list[str]:
    notes = []
    lung_parts = [t for t in targets if t.key.startswith("lung_") and t.kind == "organ" and t.laterality]
    whole = [t for t in lung_parts if t.key in WHOLE_LUNGS]
    lobes = [t for t in lung_parts if t.key not in WHOLE_LUNGS]
    if whole:
        # The union is redistributed: a left lung the model called "right" becomes the left lung.
        left, right = side_regions(np.logical_or.reduce([masks[index[t.key]] for t in whole]), grid, midline)
        for t in whole:
            i = index[t.key]
            new = left if t.laterality == "left" else right
            if not np.array_equal(new, masks[i]):
                notes.append(f"{t.key}: reassigned lung voxels by side of the body midline")
            masks[i] = new.copy()
    if lobes:
        # Lobes keep their own voxels, minus those on the wrong side.
        left, right = side_regions(np.logical_or.reduce([masks[index[t.key]] for t in lobes]), grid, midline)
        for t in lobes:
            i = index[t.key]
            kept = masks[i] & (left if t.laterality == "left" else right)
            removed = int(masks[i].sum() - kept.sum())
            if removed:
                notes.append(f"{t.key}: dropped {removed} voxels on the other side of the body")
            masks[i] = kept
    return notes


def constrain_probabilities(probabilities: np.ndarray, mask: np.ndarray, level: int) -> np.ndarray:
    """uint8 probabilities whose ``>= level`` region is exactly ``mask``, kept as close as possible to
    ``probabilities`` where the boundary is interpolated.

    Inside the mask values are raised to at least ``level``; in a one-voxel shell around it they are
    capped below ``level``; elsewhere they are zero. Linear interpolation between voxel centres only
    ever mixes a voxel with its 26 neighbours, so thresholding the resampled result reproduces the
    post-processed mask's shape with smooth edges, and removed parts cannot reappear.
    """
    out = np.zeros_like(probabilities, dtype=np.uint8)
    box = bounding_box(mask, margin=1)
    if box is None:
        return out
    inside = mask[box]
    shell = ndimage.binary_dilation(inside, structure=_FULL_CONNECTIVITY) & ~inside
    values = probabilities[box]
    block = np.zeros_like(values, dtype=np.uint8)
    block[inside] = np.maximum(values[inside], level)
    block[shell] = np.minimum(values[shell], level - 1)
    out[box] = block
    return out
