"""Slicer segmentation files (``.seg.nrrd``), read and written with ``slicerio``, Slicer's own library.

Layout (Slicer developer guide, "Segmentation labelmap file format"): a 3D label volume when no
segments overlap, otherwise a 4D volume whose first, fastest axis (kind ``list``) holds *layers*,
each a 3D label volume; every segment lives in one layer with one label value and is described by
``SegmentN_*`` fields. MoME fills in the segments' names, colours, extents, terminology and the
DICOM algorithm tags; the tag names and the terminology entry are ``mome.vocabulary.terminology``'s.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import SimpleITK as sitk

from ..imaging import Grid, label_boxes
from ..vocabulary.codes import SegmentDescriptor
from ..vocabulary.terminology import (
    ALGORITHM_NAME_TAG,
    ALGORITHM_TYPE_TAG,
    GENERAL_ANATOMY_CONTEXT_NAME,
    TERMINOLOGY_TAG,
    parse_slicer_terminology_entry,
    slicer_terminology_entry,
)
from .masks import assign_layers, check_count, checked_masks, label_dtype

BINARY_LABELMAP = "Binary labelmap"


#: gzip level of the voxels. Level 1 compresses a 512×512×300 label map ~6× faster than pynrrd's
#: default 9, for a file a few times larger (1.9 MB instead of 0.5 MB for mome-mini's 5 structures on
#: the benchmark CT; benchmarks/results/inference-cpu-idle.json).
GZIP_LEVEL = 1


def write_seg_nrrd(
    path: str | os.PathLike[str],
    masks: Sequence[np.ndarray] | np.ndarray,
    reference: sitk.Image,
    segments: Sequence[SegmentDescriptor],
    algorithm_name: str,
    terminology_entries: Sequence[str] | None = None,
    segment_tags: Sequence[Mapping[str, str]] | None = None,
) -> Path:
    """Write a Slicer ``.seg.nrrd`` on the reference grid that keeps overlapping masks whole.

    ``masks[i]`` ((z, y, x), reference grid) is described by ``segments[i]`` and stored with
    label value ``i + 1``. ``terminology_entries[i]``, when given, is written as the segment's
    ``TerminologyEntry`` verbatim (e.g. an entry chosen in Slicer's terminology browser; an empty
    one is left out); otherwise it is built from the descriptor's codes. ``segment_tags[i]`` adds
    tags of its own to segment i (MoME records each structure's reliability there). Returns the path.
    The file is written in place: stage it with :func:`mome.io.atomic.atomic_write` for an
    all-or-nothing result.
    """
    import slicerio

    arrays = checked_masks(masks, reference)
    check_count(arrays, segments)
    if terminology_entries is not None and len(terminology_entries) != len(segments):
        raise ValueError("terminology_entries needs one entry per segment")
    if segment_tags is not None and len(segment_tags) != len(segments):
        raise ValueError("segment_tags needs one entry per segment")
    keys = [s.key for s in segments]
    if len(set(keys)) != len(keys):
        raise ValueError(f"Segment keys must be unique (they become Slicer segment IDs): {keys}")

    grid = Grid.of(reference)
    layers = assign_layers(arrays)
    layer_count = max(layers, default=0) + 1
    volumes = np.zeros((layer_count, *grid.array_shape), dtype=label_dtype(len(arrays)))
    for index, (mask, layer) in enumerate(zip(arrays, layers, strict=True)):
        volumes[layer][mask] = index + 1
    # Every segment's box from its layer's label map: one pass per layer, not one per segment.
    per_layer = [label_boxes(volume, len(arrays)) for volume in volumes]
    boxes = [per_layer[layer][index] for index, layer in enumerate(layers)]
    entries = terminology_entries or [slicer_terminology_entry(s, GENERAL_ANATOMY_CONTEXT_NAME) for s in segments]
    segmentation = {
        # Written in C index order: a (z, y, x) array has x fastest; the layers go last so that they
        # become the fastest (first, ``list``) file axis, as Slicer expects.
        "voxels": volumes[0] if layer_count == 1 else np.ascontiguousarray(np.moveaxis(volumes, 0, -1)),
        "ijkToLPS": grid.ijk_to_lps,
        "encoding": "gzip",
        "containedRepresentationNames": [BINARY_LABELMAP],
        # Slicer >= 5.4 reads SourceRepresentation; older versions read MasterRepresentation.
        "masterRepresentation": BINARY_LABELMAP,
        "Segmentation_SourceRepresentation": BINARY_LABELMAP,
        "referenceImageExtentOffset": [0, 0, 0],
        "segments": [
            _segment(index, segment, layers[index], boxes[index], entries[index], algorithm_name,
                     segment_tags[index] if segment_tags is not None else {})
            for index, segment in enumerate(segments)
        ],
    }
    target = Path(path)
    slicerio.write_segmentation(str(target), segmentation, compression_level=GZIP_LEVEL, index_order="C")
    return target


def _segment(index: int, segment: SegmentDescriptor, layer: int, box: tuple[slice, ...] | None, entry: str,
             algorithm_name: str, extra_tags: Mapping[str, str]) -> dict[str, Any]:
    """Slicer's segment fields; ``box``: the (z, y, x) slices of the segment's voxels, None when empty."""
    tags = {TERMINOLOGY_TAG: _tag_value(entry)} if entry else {}
    tags.update({ALGORITHM_TYPE_TAG: "AUTOMATIC", ALGORITHM_NAME_TAG: _tag_value(algorithm_name)})
    tags.update({key: _tag_value(value) for key, value in extra_tags.items()})
    return {
        "id": segment.key,
        "name": segment.name,
        "color": [round(c / 255, 6) for c in segment.color],
        # Chosen on purpose: Slicer must not replace our names and colours with terminology defaults.
        "colorAutoGenerated": False,
        "nameAutoGenerated": False,
        # Inclusive (x0, x1, y0, y1, z0, z1); Slicer's "empty" extent for an empty mask.
        "extent": [v for s in reversed(box) for v in (s.start, s.stop - 1)] if box else [0, -1, 0, -1, 0, -1],
        "labelValue": index + 1,
        "layer": layer,
        "tags": tags,
    }


def _tag_value(value: str) -> str:
    """Free text made safe inside a Slicer tag list, where ``|`` separates tags."""
    return value.replace("|", "/").replace("\n", " ")


def read_seg_nrrd(path: str | os.PathLike[str]) -> tuple[list[dict[str, Any]], np.ndarray, Grid]:
    """Read a ``.seg.nrrd`` (or plain label map NRRD) into segment infos, masks and geometry.

    Returns ``(segments, masks, grid)``: ``segments[i]`` is a dict with ``id``, ``name``,
    ``color`` (0-255 RGB), ``tags`` (dict), ``layer``, ``label_value``, ``terminology_entry`` and
    ``descriptor`` (a :class:`SegmentDescriptor` when the terminology has category and type codes,
    else None); ``masks`` is a (K, z, y, x) boolean array on the file grid; ``grid`` is its LPS
    geometry. A NRRD without segment fields yields one segment per label value.
    """
    segmentation = _read(path, skip_voxels=False)
    voxels = segmentation["voxels"]  # slicerio reads in file (Fortran) order: (x, y, z) or (layer, x, y, z)
    volumes = voxels.transpose(2, 1, 0)[None] if voxels.ndim == 3 else voxels.transpose(0, 3, 2, 1)
    grid = Grid.from_ijk_to_lps(segmentation["ijkToLPS"], voxels.shape[-3:])
    infos = [_info(s, position, voxels.ndim == 4) for position, s in enumerate(segmentation["segments"])]
    if not infos:
        labels = [int(v) for v in np.unique(volumes[0]) if v != 0]
        infos = [_info({"id": f"label_{v}", "name": f"Label {v}", "labelValue": v}, 0, False) for v in labels]
    masks = (
        np.stack([volumes[i["layer"]] == i["label_value"] for i in infos])
        if infos
        else np.zeros((0, *grid.array_shape), dtype=bool)
    )
    return infos, masks, grid


def read_seg_nrrd_segments(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """The segment infos of :func:`read_seg_nrrd` from the header alone (no voxels are read)."""
    segmentation = _read(path, skip_voxels=True)
    return [_info(s, position, False) for position, s in enumerate(segmentation["segments"])]


def _read(path: str | os.PathLike[str], skip_voxels: bool) -> dict[str, Any]:
    import nrrd
    import slicerio

    try:
        segmentation = slicerio.read_segmentation(os.fspath(path), skip_voxels=skip_voxels)
    except (nrrd.NRRDError, OSError, IndexError, KeyError, ValueError) as exc:
        raise ValueError(f"{Path(path).name} is not a readable segmentation NRRD: {exc}") from exc
    segmentation.setdefault("segments", [])
    return segmentation


def _info(segment: dict[str, Any], position: int, layered: bool) -> dict[str, Any]:
    import slicerio.segmentation

    tags = dict(segment.get("tags", {}))
    if "terminology" in segment:
        tags[TERMINOLOGY_TAG] = slicerio.segmentation.terminology_entry_to_string(segment["terminology"])
    if "status" in segment:
        tags["Segmentation.Status"] = segment["status"]
    color = tuple(int(round(float(c) * 255)) for c in segment.get("color", (0.5, 0.5, 0.5)))
    entry = tags.get(TERMINOLOGY_TAG, "")
    return {
        "id": segment["id"],
        "name": segment.get("name", ""),
        "color": color,
        "tags": tags,
        # Files from Slicer < 4.11 have no layer/label fields: one segment per layer, label 1.
        "layer": int(segment.get("layer", position if layered else 0)),
        "label_value": int(segment.get("labelValue", 1)),
        "terminology_entry": entry,
        "descriptor": _descriptor(segment["id"], segment.get("name", ""), color, entry),
    }


def _descriptor(key: str, name: str, color: tuple[int, ...], entry: str) -> SegmentDescriptor | None:
    try:
        codes = parse_slicer_terminology_entry(entry) if entry else None
    except ValueError:
        return None
    if codes is None or codes["category"] is None or codes["type"] is None:
        return None
    return SegmentDescriptor(
        key=key,
        name=name,
        color=(color + (0, 0, 0))[:3],  # type: ignore[arg-type]
        category=codes["category"],
        type=codes["type"],
        type_modifier=codes["type_modifier"],
    )
