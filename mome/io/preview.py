"""A quick-look PNG: a few axial slices and one coronal slice with coloured segment overlays.

Slices are taken after reorienting to LPS (SimpleITK DICOMOrient), which gives the radiological
display convention for any scanner direction: axial slices show anterior at the top and the
patient's right on the image's left; the coronal slice is flipped so superior is at the top.
Tiles are resampled to square millimetres so anisotropic voxels do not distort anatomy.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import SimpleITK as sitk
from PIL import Image, ImageDraw, ImageFont

from ..imaging import bounding_box
from ..vocabulary.codes import SegmentDescriptor
from .masks import check_count, checked_masks

_GAP = 4  # pixels between tiles
_BACKGROUND = (0, 0, 0)
_TEXT = (255, 255, 255)


def render_preview(
    path: str | os.PathLike[str],
    image: sitk.Image,
    masks: Sequence[np.ndarray] | np.ndarray,
    segments: Sequence[SegmentDescriptor],
    n_axial: int = 3,
    coronal: bool = True,
    window: tuple[float, float] = (400.0, 40.0),
    alpha: float = 0.45,
    tile_size: int = 256,
) -> Path:
    """Write a PNG mosaic of ``n_axial`` axial slices through the segmented region (+ a coronal one).

    ``window`` is (width, level) in HU (soft tissue W400/L40 by default); each segment is blended
    in its descriptor colour with ``alpha``, later segments on top. ``tile_size`` is the pixel
    size of the longer side of an axial tile. Returns the written path.
    """
    if n_axial < 1 and not coronal:
        raise ValueError("Nothing to draw: ask for at least one axial slice or the coronal one")
    arrays = checked_masks(masks, image)
    check_count(arrays, segments)
    ct, oriented_masks, spacing = _orient_lps(image, arrays)
    colors = np.array([s.color for s in segments], dtype=np.float32).reshape(-1, 3)
    union = np.zeros(ct.shape, dtype=bool)
    for mask in oriented_masks:
        union |= mask

    # Axial tiles are (rows = y / posterior, columns = x / left); mm per pixel from the spacing.
    scale = tile_size / max(ct.shape[2] * spacing[0], ct.shape[1] * spacing[1])
    tiles = []
    for z in _axial_indices(union, n_axial):
        rgb = _blend(_windowed(ct[z], window), [m[z] for m in oriented_masks], colors, alpha)
        tiles.append(_resize(rgb, spacing[0] * scale, spacing[1] * scale))
    if coronal:
        y = _coronal_index(union)
        # Flip rows: array z grows toward superior, but superior belongs at the top of the picture.
        rgb = _blend(_windowed(ct[::-1, y], window), [m[::-1, y] for m in oriented_masks], colors, alpha)
        tiles.append(_resize(rgb, spacing[0] * scale, spacing[2] * scale))

    mosaic = _compose(tiles, [s for s, m in zip(segments, arrays, strict=True) if m.any()])
    target = Path(path)
    mosaic.save(target, format="PNG")
    return target


def _orient_lps(
    image: sitk.Image, masks: Sequence[np.ndarray]
) -> tuple[np.ndarray, list[np.ndarray], tuple[float, ...]]:
    """CT and masks as (z=S, y=P, x=L) arrays, with the x, y, z spacing after reorientation."""
    orient = sitk.DICOMOrientImageFilter()
    orient.SetDesiredCoordinateOrientation("LPS")
    ct = sitk.GetArrayFromImage(orient.Execute(image))
    # Apply the same axis permutation and flips to the masks as numpy views instead of running
    # the filter once per mask: output index axis i is input axis permute[i], then flipped.
    permute, flips = orient.GetPermuteOrder(), orient.GetFlipAxes()
    # numpy axes run (z, y, x), the reverse of SimpleITK's index axes.
    axes = [2 - permute[2 - n] for n in range(3)]
    flip_axes = tuple(2 - i for i in range(3) if flips[i])
    oriented = [
        np.flip(np.transpose(mask, axes), axis=flip_axes) if flip_axes else np.transpose(mask, axes) for mask in masks
    ]
    spacing = tuple(image.GetSpacing()[permute[i]] for i in range(3))
    return ct, oriented, spacing


def _axial_indices(union: np.ndarray, count: int) -> list[int]:
    """Evenly spread slices inside the segmented z range (the whole volume if nothing is segmented)."""
    box = bounding_box(union)
    low, high = (box[0].start, box[0].stop - 1) if box else (0, union.shape[0] - 1)
    picks = np.linspace(low, high, count + 2)[1:-1] if count > 0 else []
    return sorted({int(round(p)) for p in picks})


def _coronal_index(union: np.ndarray) -> int:
    """The coronal plane cutting the largest segmented area (the middle one if nothing is segmented)."""
    area = union.sum(axis=(0, 2))
    return int(np.argmax(area)) if area.any() else union.shape[1] // 2


def _windowed(values: np.ndarray, window: tuple[float, float]) -> np.ndarray:
    width, level = window
    gray = (values.astype(np.float32) - (level - width / 2)) / width
    return np.repeat((np.clip(gray, 0.0, 1.0) * 255)[..., np.newaxis], 3, axis=-1)


def _blend(rgb: np.ndarray, masks: Sequence[np.ndarray], colors: np.ndarray, alpha: float) -> np.ndarray:
    for mask, color in zip(masks, colors, strict=True):
        rgb[mask] = rgb[mask] * (1 - alpha) + color * alpha
    return rgb.round().astype(np.uint8)


def _resize(rgb: np.ndarray, column_px: float, row_px: float) -> Image.Image:
    """Scale a slice so that one pixel covers the same millimetres in both directions."""
    rows, columns = rgb.shape[:2]
    size = (max(1, round(columns * column_px)), max(1, round(rows * row_px)))
    return Image.fromarray(rgb, mode="RGB").resize(size, Image.Resampling.BILINEAR)


def _compose(tiles: list[Image.Image], legend: Sequence[SegmentDescriptor]) -> Image.Image:
    font = ImageFont.load_default()
    line = 16
    width = sum(t.width for t in tiles) + _GAP * (len(tiles) + 1)
    per_row = max(1, width // 180)
    legend_rows = -(-len(legend) // per_row)
    height = max(t.height for t in tiles) + 2 * _GAP + legend_rows * line
    mosaic = Image.new("RGB", (width, height), _BACKGROUND)
    draw = ImageDraw.Draw(mosaic)
    x = _GAP
    for tile in tiles:
        mosaic.paste(tile, (x, _GAP))
        draw.text((x + 3, _GAP + 2), "R", fill=_TEXT, font=font)  # patient right is on the left
        x += tile.width + _GAP
    top = max(t.height for t in tiles) + 2 * _GAP
    for index, segment in enumerate(legend):
        left = _GAP + (index % per_row) * (width // per_row)
        y = top + (index // per_row) * line
        draw.rectangle([left, y + 2, left + 10, y + 12], fill=tuple(segment.color))
        draw.text((left + 14, y), segment.name, fill=_TEXT, font=font)
    return mosaic
