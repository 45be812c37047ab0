"""Slicer segmentation files (``.seg.nrrd``): writing with names, colours, terminology and overlaps.

Layout (Slicer developer guide, "Segmentation labelmap file format"): a 3D label volume when no
segments overlap, otherwise a 4D volume whose first, fastest axis (kind ``list``) holds *layers*,
each a 3D label volume; every segment lives in one layer with one label value and is described
by ``SegmentN_*`` key/value fields. Space is LPS, like SimpleITK, so the reference geometry is
written without any sign flips.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import nrrd
import numpy as np
import SimpleITK as sitk

from mome.io.atomic import atomic_write
from mome.io.geometry import Grid
from mome.io.masks import assign_layers, bounding_box, check_count, checked_masks, label_dtype
from mome.io.terminology import escape_tag_value, parse_terminology_entry, terminology_entry
from mome.vocabulary.codes import Code, SegmentDescriptor

_LPS = "left-posterior-superior"
# NRRD space names whose first two axes point the other way than LPS.
_RAS_SPACES = {"right-anterior-superior", "ras"}
_LPS_SPACES = {_LPS, "lps"}


def write_seg_nrrd(
    path: str | os.PathLike[str],
    masks: Sequence[np.ndarray] | np.ndarray,
    reference: sitk.Image,
    segments: Sequence[SegmentDescriptor],
    algorithm_name: str,
    terminology_entries: Sequence[str] | None = None,
) -> Path:
    """Write a Slicer ``.seg.nrrd`` on the reference grid that keeps overlapping masks whole.

    ``masks[i]`` ((z, y, x), reference grid) is described by ``segments[i]`` and stored with
    label value ``i + 1``. ``terminology_entries[i]``, when given, is written as the segment's
    ``TerminologyEntry`` verbatim (e.g. an entry chosen in Slicer's terminology browser);
    otherwise it is built from the descriptor's codes. Returns the written path.
    """
    arrays = checked_masks(masks, reference)
    check_count(arrays, segments)
    if terminology_entries is not None and len(terminology_entries) != len(segments):
        raise ValueError("terminology_entries needs one entry per segment")
    keys = [s.key for s in segments]
    if len(set(keys)) != len(keys):
        raise ValueError(f"Segment keys must be unique (they become Slicer segment IDs): {keys}")

    layers = assign_layers(arrays)
    layer_count = max(layers, default=0) + 1
    volumes = np.zeros((layer_count, *Grid.of(reference).array_shape), dtype=label_dtype(len(arrays)))
    for index, (mask, layer) in enumerate(zip(arrays, layers, strict=True)):
        volumes[layer][mask] = index + 1

    header = _geometry_header(Grid.of(reference), layered=layer_count > 1)
    header.update(_segmentation_fields())
    for index, segment in enumerate(segments):
        entry = terminology_entries[index] if terminology_entries is not None else terminology_entry(segment)
        header.update(_segment_fields(index, segment, layers[index], arrays[index], entry, algorithm_name))

    # C index order: a (z, y, x) array is written with x fastest; layers go last in C order so that
    # they become the fastest (first) file axis, as Slicer expects.
    data = volumes[0] if layer_count == 1 else np.moveaxis(volumes, 0, -1)
    target = Path(path)
    with atomic_write(target) as tmp:
        nrrd.write(str(tmp), np.ascontiguousarray(data), header, index_order="C")
    return target


def _geometry_header(grid: Grid, layered: bool) -> dict[str, Any]:
    direction = np.array(grid.direction).reshape(3, 3)
    # NRRD "space directions" lists one vector per file axis: index axis i of SimpleITK is the
    # direction column i scaled by the spacing.
    axes = (direction * np.array(grid.spacing)).T
    if layered:
        axes = np.vstack([np.full((1, 3), np.nan), axes])  # NaN row = "none" for the list axis
    return {
        "space": _LPS,
        "space directions": axes,
        "kinds": (["list"] if layered else []) + ["domain"] * 3,
        "space origin": np.array(grid.origin, dtype=float),
        "encoding": "gzip",
    }


def _segmentation_fields() -> dict[str, str]:
    return {
        "Segmentation_ContainedRepresentationNames": "Binary labelmap|",
        # Slicer >= 5.4 reads SourceRepresentation; older versions read MasterRepresentation.
        "Segmentation_MasterRepresentation": "Binary labelmap",
        "Segmentation_SourceRepresentation": "Binary labelmap",
        "Segmentation_ReferenceImageExtentOffset": "0 0 0",
    }


def _segment_fields(
    index: int, segment: SegmentDescriptor, layer: int, mask: np.ndarray, entry: str, algorithm_name: str
) -> dict[str, str]:
    box = bounding_box(mask)
    extent = " ".join(str(v) for v in box) if box else "0 -1 0 -1 0 -1"  # Slicer's "empty" extent
    tags = [
        f"TerminologyEntry:{escape_tag_value(entry)}",
        "DICOM.SegmentAlgorithmType:AUTOMATIC",
        f"DICOM.SegmentAlgorithmName:{escape_tag_value(algorithm_name)}",
    ]
    prefix = f"Segment{index}_"
    return {
        prefix + "Color": " ".join(f"{c / 255:.6g}" for c in segment.color),
        # 0 = chosen on purpose: Slicer must not replace our names/colours with terminology defaults.
        prefix + "ColorAutoGenerated": "0",
        prefix + "Extent": extent,
        prefix + "ID": segment.key,
        prefix + "LabelValue": str(index + 1),
        prefix + "Layer": str(layer),
        prefix + "Name": segment.name,
        prefix + "NameAutoGenerated": "0",
        prefix + "Tags": "|".join(tags) + "|",
    }


def read_seg_nrrd(path: str | os.PathLike[str]) -> tuple[list[dict[str, Any]], np.ndarray, Grid]:
    """Read a ``.seg.nrrd`` (or plain label map NRRD) into segment infos, masks and geometry.

    Returns ``(segments, masks, grid)``: ``segments[i]`` is a dict with ``id``, ``name``,
    ``color`` (0-255 RGB), ``tags`` (dict), ``layer``, ``label_value``, ``terminology_entry`` and
    ``descriptor`` (a :class:`SegmentDescriptor` when the terminology has category and type codes,
    else None); ``masks`` is a (K, z, y, x) boolean array on the file grid; ``grid`` is its LPS
    geometry. A NRRD without segment fields yields one segment per label value.
    """
    data, header = nrrd.read(str(path), index_order="C")
    layered = data.ndim == 4
    grid = _grid_from_header(header, data.shape[:3])
    volumes = np.moveaxis(data, -1, 0) if layered else data[np.newaxis]
    infos = _segment_infos(header, volumes, layered)
    masks = (
        np.stack([volumes[i["layer"]] == i["label_value"] for i in infos])
        if infos
        else (np.zeros((0, *grid.array_shape), dtype=bool))
    )
    return infos, masks, grid


def _grid_from_header(header: dict[str, Any], array_shape: tuple[int, ...]) -> Grid:
    space = str(header.get("space", _LPS)).lower()
    if space not in _LPS_SPACES | _RAS_SPACES:
        raise ValueError(f"Unsupported NRRD space {space!r}; expected left-posterior-superior")
    axes = np.asarray(header["space directions"], dtype=float)
    axes = axes[~np.isnan(axes).any(axis=1)]  # drop the "none" row of the list axis
    origin = np.asarray(header.get("space origin", np.zeros(3)), dtype=float)
    if space in _RAS_SPACES:
        flip = np.array([-1.0, -1.0, 1.0])  # RAS -> LPS
        axes, origin = axes * flip, origin * flip
    spacing = np.linalg.norm(axes, axis=1)
    direction = (axes / spacing[:, np.newaxis]).T  # columns are the index-axis directions
    return Grid(
        size=(int(array_shape[2]), int(array_shape[1]), int(array_shape[0])),
        spacing=tuple(float(s) for s in spacing),
        origin=tuple(float(o) for o in origin),
        direction=tuple(float(d) for d in direction.ravel()),
    )


def _segment_infos(header: dict[str, Any], volumes: np.ndarray, layered: bool) -> list[dict[str, Any]]:
    indices = sorted(
        int(k[len("Segment") : -len("_ID")]) for k in header if k.startswith("Segment") and k.endswith("_ID")
    )
    if not indices:
        labels = [int(v) for v in np.unique(volumes[0]) if v != 0]
        return [_info(f"label_{v}", f"Label {v}", (128, 128, 128), {}, 0, v) for v in labels]
    infos = []
    for position, index in enumerate(indices):

        def field(name: str, default: object = "", index: int = index) -> str:
            return str(header.get(f"Segment{index}_{name}", default))

        color = tuple(int(round(float(c) * 255)) for c in field("Color", "0.5 0.5 0.5").split())
        # Files from Slicer < 4.11 have no layer/label fields: one segment per layer, label 1.
        layer = int(field("Layer", position if layered else 0))
        label = int(field("LabelValue", 1))
        infos.append(_info(field("ID"), field("Name"), color, _parse_tags(field("Tags")), layer, label))
    return infos


def _info(
    segment_id: str, name: str, color: tuple[int, ...], tags: dict[str, str], layer: int, label: int
) -> dict[str, Any]:
    entry = tags.get("TerminologyEntry", "")
    return {
        "id": segment_id,
        "name": name,
        "color": color,
        "tags": tags,
        "layer": layer,
        "label_value": label,
        "terminology_entry": entry,
        "descriptor": _descriptor(segment_id, name, color, entry),
    }


def _parse_tags(text: str) -> dict[str, str]:
    tags = {}
    for item in text.split("|"):
        if item:
            key, _, value = item.partition(":")
            tags[key] = value
    return tags


def _descriptor(key: str, name: str, color: tuple[int, ...], entry: str) -> SegmentDescriptor | None:
    if not entry:
        return None
    parts = parse_terminology_entry(entry)
    category, kind, modifier = parts["category"], parts["type"], parts["type_modifier"]
    if not isinstance(category, Code) or not isinstance(kind, Code):
        return None
    return SegmentDescriptor(
        key=key,
        name=name,
        color=(color + (0, 0, 0))[:3],  # type: ignore[arg-type]
        category=category,
        type=kind,
        type_modifier=modifier if isinstance(modifier, Code) else None,
    )
