"""Volumes out to the engine and segmentations back into the scene, on exactly the volume's grid.

Qt-free: every function takes the MRML scene and nodes it works on, so the same code runs inside
Slicer and under plain pytest with ``slicer-core``.

* :func:`write_volume_for_engine` writes the input volume node to NRRD with
  ``vtkMRMLVolumeArchetypeStorageNode``: the file is LPS with the node's full IJK→RAS (origin,
  spacing, any oblique direction), which is what the engine reads and writes its result on.
* :func:`check_ct_values` runs the engine's plausibility check on a volume node's voxels.
* :func:`import_segmentation` reads the engine's ``.seg.nrrd`` (names, colours, terminology, the
  algorithm tags and each structure's reliability are in the file) into a new segmentation node, or
  updates an existing one: segments of the same structure as a result segment are replaced *in
  place* (same segment ID, position and display settings), every other segment is left alone.
* Structures segmented only because the user opted in carry a mark in their name ("spleen (not
  learned)", "liver tumor (zero-shot)"). A plain result replaces the marked segment of its
  structure too, so no stale guess is left beside it; a marked result never takes the place of a
  plain segment (it is added beside it, or replaces an earlier guess of the same structure).
* Each segment MoME writes carries a content fingerprint (tag ``MoME.ContentHash``). A later run
  compares it with the segment's current voxels, so :func:`plan_import` can tell the widget which
  segments the user has edited (or drew themselves) before anything is replaced.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import slicer
import vtk
from vtk.util import numpy_support

from .errors import FriendlyError

BINARY_LABELMAP = "Binary labelmap"
TERMINOLOGY_TAG = "TerminologyEntry"
ALGORITHM_TYPE_TAG = "DICOM.SegmentAlgorithmType"
ALGORITHM_NAME_TAG = "DICOM.SegmentAlgorithmName"
CONTENT_HASH_TAG = "MoME.ContentHash"
# Written by ``mome segment`` (``mome.cli.segment.RELIABILITY_TAG``/``EVIDENCE_TAG``): the structure's
# status ("weak", "not learned", ...) and the figures behind it.
RELIABILITY_TAG = "MoME.Reliability"
EVIDENCE_TAG = "MoME.Evidence"
#: Segment tags MoME owns on imported segments (copied onto replaced segments).
MOME_TAGS = (TERMINOLOGY_TAG, ALGORITHM_TYPE_TAG, ALGORITHM_NAME_TAG, CONTENT_HASH_TAG, RELIABILITY_TAG,
             EVIDENCE_TAG)
#: Tags that describe one result only: removed from a replaced segment when the new result lacks them.
RESULT_TAGS = (RELIABILITY_TAG, EVIDENCE_TAG)

# Why a segment of the target must not be replaced silently.
EDITED = "edited after MoME created it"
NOT_FROM_MOME = "not created by MoME"


class InputVolumeError(FriendlyError):
    """The selected input cannot be sent to the engine."""


class ImportError_(FriendlyError):  # noqa: N801 - not the builtin ImportError
    """The engine's result cannot be loaded into the scene."""


# --------------------------------------------------------------------------------------------------
# Input: volume node → NRRD
# --------------------------------------------------------------------------------------------------


def check_input_volume(volume_node: Any) -> None:
    """Raise :class:`InputVolumeError` unless ``volume_node`` is a 3D scalar volume with voxels."""
    if volume_node is None:
        raise InputVolumeError("Select a CT volume to segment.")
    if not volume_node.IsA("vtkMRMLScalarVolumeNode") or volume_node.IsA("vtkMRMLLabelMapVolumeNode"):
        raise InputVolumeError(
            f"'{volume_node.GetName()}' is not a CT image (it is a {volume_node.GetClassName()}); "
            "select a scalar CT volume."
        )
    image = volume_node.GetImageData()
    if image is None or image.GetNumberOfPoints() == 0:
        raise InputVolumeError(f"'{volume_node.GetName()}' has no image data; load the CT again.")
    if image.GetNumberOfScalarComponents() != 1:
        raise InputVolumeError(
            f"'{volume_node.GetName()}' is a colour or multi-component image; MoME needs a greyscale CT."
        )
    dims = image.GetDimensions()
    if min(dims) < 2:
        raise InputVolumeError(
            f"'{volume_node.GetName()}' is a single slice ({dims[0]}×{dims[1]}×{dims[2]} voxels); "
            "MoME segments 3D CT volumes. Load the whole series."
        )


def check_ct_values(volume_node: Any) -> Any:
    """``mome.io.plausibility.check_ct_values`` on the node's voxels (what ``mome segment`` checks
    on the file it is given): an ``InputCheck`` whose message names the volume."""
    from mome.io.plausibility import check_ct_values as check

    check_input_volume(volume_node)
    image = volume_node.GetImageData()
    i, j, k = image.GetDimensions()
    values = numpy_support.vtk_to_numpy(image.GetPointData().GetScalars()).reshape(k, j, i)
    return check(values, f"'{volume_node.GetName()}'")


def write_volume_for_engine(volume_node: Any, path: str | os.PathLike[str]) -> Path:
    """Write ``volume_node`` to ``path`` (``.nrrd``, uncompressed) with its exact geometry.

    The node's own IJK→RAS is written; a parent transform is *not* applied (the segmentation is
    placed under the same transform instead, see :func:`import_segmentation`), so the engine sees
    the voxels as acquired.
    """
    check_input_volume(volume_node)
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    storage = slicer.vtkMRMLVolumeArchetypeStorageNode()
    storage.SetFileName(str(target))
    storage.SetUseCompression(0)  # written once, read once: compression only costs time
    if not storage.WriteData(volume_node) or not target.is_file():
        raise InputVolumeError(
            f"'{volume_node.GetName()}' could not be written to a temporary file for MoME "
            f"(is the disk full?). Temporary folder: {target.parent}"
        )
    return target


def read_volume(scene: Any, path: str | os.PathLike[str], name: str) -> Any:
    """A CT file (NRRD, NIfTI, ...) as a new scalar volume node with display nodes."""
    node = scene.AddNewNodeByClass("vtkMRMLScalarVolumeNode", scene.GenerateUniqueName(name))
    storage = scene.AddNewNodeByClass("vtkMRMLVolumeArchetypeStorageNode")
    storage.SetFileName(str(path))
    if not storage.ReadData(node):
        scene.RemoveNode(node)
        scene.RemoveNode(storage)
        raise InputVolumeError(f"'{path}' could not be read as a volume.")
    node.SetAndObserveStorageNodeID(storage.GetID())
    node.CreateDefaultDisplayNodes()
    return node


# --------------------------------------------------------------------------------------------------
# Segment tags and fingerprints
# --------------------------------------------------------------------------------------------------


def get_tag(segment: Any, name: str) -> str | None:
    value = vtk.reference("")
    return str(value) if segment.GetTag(name, value) else None


def segment_content_hash(segmentation_node: Any, segment_id: str) -> str:
    """A fingerprint of the segment's voxels, independent of how Slicer stores them.

    Hashes the voxel grid (direction × spacing), the world position of the first voxel of the
    mask's bounding box and the packed mask inside that box; so moving the segment to another
    layer, changing its label value or padding/cropping the labelmap extent keeps the hash, while
    any painted or erased voxel changes it.
    """
    segment = segmentation_node.GetSegmentation().GetSegment(segment_id)
    if segment is None:
        raise KeyError(segment_id)
    image = segment.GetRepresentation(BINARY_LABELMAP)
    if image is None:
        return "no-binary-labelmap"
    mask, extent_start = _segment_mask(image, segment.GetLabelValue())
    digest = hashlib.sha256()
    matrix = vtk.vtkMatrix4x4()
    image.GetImageToWorldMatrix(matrix)
    axes = np.array([[matrix.GetElement(r, c) for c in range(3)] for r in range(3)])
    digest.update(np.round(axes, 4).astype(np.float64).tobytes())
    if not mask.any():
        digest.update(b"empty")
        return digest.hexdigest()
    nonzero = np.nonzero(mask)  # (k, j, i)
    low = [int(a.min()) for a in nonzero]
    high = [int(a.max()) + 1 for a in nonzero]
    crop = mask[low[0]:high[0], low[1]:high[1], low[2]:high[2]]
    first_ijk = np.array([extent_start[0] + low[2], extent_start[1] + low[1], extent_start[2] + low[0], 1.0])
    world = np.array([[matrix.GetElement(r, c) for c in range(4)] for r in range(4)]) @ first_ijk
    digest.update(np.round(world[:3], 3).astype(np.float64).tobytes())
    digest.update(np.array(crop.shape, dtype=np.int64).tobytes())
    digest.update(np.packbits(crop).tobytes())
    return digest.hexdigest()


def _segment_mask(image: Any, label_value: int) -> tuple[np.ndarray, tuple[int, int, int]]:
    extent = image.GetExtent()
    shape = (extent[5] - extent[4] + 1, extent[3] - extent[2] + 1, extent[1] - extent[0] + 1)
    if min(shape) <= 0 or image.GetPointData().GetScalars() is None:
        return np.zeros((0, 0, 0), dtype=bool), (extent[0], extent[2], extent[4])
    values = numpy_support.vtk_to_numpy(image.GetPointData().GetScalars()).reshape(shape)
    return values == label_value, (extent[0], extent[2], extent[4])


def edit_state(segmentation_node: Any, segment_id: str) -> str | None:
    """None if the segment is exactly as MoME wrote it, else why it must not be replaced silently."""
    segment = segmentation_node.GetSegmentation().GetSegment(segment_id)
    recorded = get_tag(segment, CONTENT_HASH_TAG)
    if not recorded:
        return NOT_FROM_MOME
    return None if recorded == segment_content_hash(segmentation_node, segment_id) else EDITED


def edited_segments(segmentation_node: Any) -> dict[str, str]:
    """Segment ID → reason, for every segment of the node that MoME did not leave untouched."""
    segmentation = segmentation_node.GetSegmentation()
    result = {}
    for index in range(segmentation.GetNumberOfSegments()):
        segment_id = segmentation.GetNthSegmentID(index)
        state = edit_state(segmentation_node, segment_id)
        if state is not None:
            result[segment_id] = state
    return result


def _stamp(segmentation_node: Any, segment_id: str, algorithm_name: str | None) -> None:
    segment = segmentation_node.GetSegmentation().GetSegment(segment_id)
    segment.SetTag(ALGORITHM_TYPE_TAG, "AUTOMATIC")
    if algorithm_name:
        segment.SetTag(ALGORITHM_NAME_TAG, algorithm_name)
    elif not get_tag(segment, ALGORITHM_NAME_TAG):
        # DICOM SEG export refuses a non-MANUAL segment without an algorithm name.
        segment.SetTag(ALGORITHM_NAME_TAG, "MoME")
    segment.SetTag(CONTENT_HASH_TAG, segment_content_hash(segmentation_node, segment_id))


# --------------------------------------------------------------------------------------------------
# Result: .seg.nrrd → segmentation node
# --------------------------------------------------------------------------------------------------


def _normalized(name: str) -> str:
    return " ".join(name.split()).casefold()


def _marks() -> tuple[str, ...]:
    """The marks ``mome segment`` appends to opted-in structures' names: "(not learned)", "(zero-shot)"."""
    from mome.inference.reliability import MARKED_STATUSES, Reliability

    return tuple(f"({Reliability('', '', status, '').label})".casefold() for status in MARKED_STATUSES)


def structure_of(name: str) -> tuple[str, bool]:
    """The structure a segment name stands for (normalised, without a reliability mark) and whether
    the name carries a mark: "Spleen (not learned)" → ("spleen", True)."""
    norm = _normalized(name)
    for mark in _marks():
        if norm.endswith(" " + mark):
            return norm[: -len(mark)].rstrip(), True
    return norm, False


def same_structure(result_name: str, target_name: str) -> bool:
    """Whether a result segment takes the place of a target segment (module docstring): same
    structure, and never a guess (marked) in the place of a plain segment."""
    result, result_marked = structure_of(result_name)
    target, target_marked = structure_of(target_name)
    return result == target and (target_marked or not result_marked)


def _namesakes(segments: list[tuple[str, Any]], result_name: str) -> list[str]:
    """IDs of the target segments ``result_name`` takes the place of; the exact name first (it is
    the one replaced in place, the others are removed)."""
    found = [(sid, s.GetName()) for sid, s in segments if same_structure(result_name, s.GetName())]
    found.sort(key=lambda item: _normalized(item[1]) != _normalized(result_name))
    return [sid for sid, _ in found]


def _segments(segmentation_node: Any) -> list[tuple[str, Any]]:
    segmentation = segmentation_node.GetSegmentation()
    return [(segmentation.GetNthSegmentID(i), segmentation.GetNthSegment(i))
            for i in range(segmentation.GetNumberOfSegments())]


@dataclass
class ImportPlan:
    """What importing a result into a target segmentation would do (names are segment names)."""

    add: list[str] = field(default_factory=list)  # result segments with no namesake in the target
    replace: list[str] = field(default_factory=list)  # namesakes that MoME wrote and nobody changed
    protected: dict[str, str] = field(default_factory=dict)  # namesakes edited or drawn by hand → reason
    keep: list[str] = field(default_factory=list)  # target segments the result does not name

    @property
    def needs_confirmation(self) -> bool:
        return bool(self.protected)


@dataclass
class ImportReport:
    segmentation_node: Any
    added: list[str] = field(default_factory=list)
    replaced: list[str] = field(default_factory=list)
    kept_edited: list[str] = field(default_factory=list)  # protected segments the user chose to keep
    untouched: list[str] = field(default_factory=list)
    empty: list[str] = field(default_factory=list)  # imported segments without any voxel
    created_node: bool = False


class SegmentationResult:
    """The engine's ``.seg.nrrd``, read once into a hidden node; then :meth:`plan` (what an import
    would do, with the edit check of every namesake computed once) and :meth:`import_into`.

    Use as a context manager, or :meth:`close` it: that removes the hidden node again."""

    def __init__(self, scene: Any, path: str | os.PathLike[str]):
        self.scene = scene
        self.path = Path(path)
        if not self.path.is_file():
            raise ImportError_(f"MoME's result file is missing: {self.path}")
        self.node = scene.AddNewNodeByClass("vtkMRMLSegmentationNode", scene.GenerateUniqueName("MoME result"))
        self.node.SetHideFromEditors(True)
        storage = slicer.vtkMRMLSegmentationStorageNode()
        storage.SetFileName(str(self.path))
        if not storage.ReadData(self.node):
            self.close()
            raise ImportError_("MoME's result could not be loaded into Slicer.", f"file: {self.path}")
        self._plans: dict[str | None, ImportPlan] = {}

    def __enter__(self) -> "SegmentationResult":
        return self

    def __exit__(self, *_exc: Any) -> None:
        self.close()

    def segments(self) -> list[tuple[str, Any]]:
        return _segments(self.node)

    def plan(self, target_node: Any | None) -> ImportPlan:
        """What :meth:`import_into` would add, replace, and must ask about; changes nothing."""
        key = target_node.GetID() if target_node is not None else None
        if key not in self._plans:
            self._plans[key] = _plan(self.segments(), target_node)
        return self._plans[key]

    def import_into(self, volume_node: Any, target_node: Any | None = None, replace_protected: bool = False,
                    algorithm_name: str | None = None, node_name: str | None = None,
                    empty_names: list[str] | None = None) -> ImportReport:
        """Load the result into ``target_node`` (a new node when None).

        * Result segments whose name (case-insensitively) matches a target segment replace it in
          place: same segment ID, position and display settings; voxels, name, colour, terminology
          and the algorithm tags come from the result. Segments edited since MoME wrote them, or
          drawn by hand, are replaced only with ``replace_protected``; otherwise they are kept and
          their ``DICOM.SegmentAlgorithmType`` becomes ``SEMIAUTOMATIC`` when they started as MoME's.
        * Other result segments are added; target segments the result does not name are not touched.
        * A new node gets the volume as reference geometry (needed for DICOM SEG export), the
          volume's parent transform and its place in the subject hierarchy.
        """
        if volume_node is None:
            raise ImportError_("The input volume was removed from the scene before the result arrived.")
        created = target_node is None
        if not created and target_node.GetTransformNodeID() != volume_node.GetTransformNodeID():
            raise ImportError_(
                f"The segmentation '{target_node.GetName()}' is under a different transform than the volume "
                f"'{volume_node.GetName()}', so MoME's result would land in the wrong place. Choose "
                "'Create new segmentation' as output, or move both under the same transform."
            )
        plan = self.plan(target_node)
        result_segments = self.segments()
        if created:
            target_node = _new_segmentation_node(self.scene, volume_node, node_name)
        report = ImportReport(segmentation_node=target_node, created_node=created, untouched=list(plan.keep))
        was_modifying = target_node.StartModify()
        try:
            for source_id, source_segment in result_segments:
                name = source_segment.GetName()
                if name in plan.add:
                    new_id = _copy_segment(self.node, source_id, target_node)
                    _stamp(target_node, new_id, algorithm_name)
                    report.added.append(name)
                elif name in plan.replace or (name in plan.protected and replace_protected):
                    _replace_namesakes(self.node, source_id, target_node, algorithm_name)
                    report.replaced.append(name)
                else:  # protected and kept
                    if plan.protected.get(name) == EDITED:
                        for segment_id in _namesakes(_segments(target_node), name):
                            segment = target_node.GetSegmentation().GetSegment(segment_id)
                            if get_tag(segment, CONTENT_HASH_TAG):  # MoME's, then edited: semi-automatic now
                                segment.SetTag(ALGORITHM_TYPE_TAG, "SEMIAUTOMATIC")
                    report.kept_edited.append(name)
        finally:
            target_node.EndModify(was_modifying)
        if not target_node.GetSegmentation().GetSourceRepresentationName():
            target_node.SetSourceRepresentationToBinaryLabelmap()
        if empty_names is None:
            empty_names = [s.GetName() for sid, s in result_segments if _is_empty(self.node, sid)]
        report.empty = [n for n in empty_names if n in report.added or n in report.replaced]
        return report

    def close(self) -> None:
        if self.node is not None and self.node.GetScene() is not None:
            self.scene.RemoveNode(self.node)
        self.node = None


def plan_import(scene: Any, result_path: str | os.PathLike[str], target_node: Any | None) -> ImportPlan:
    """:meth:`SegmentationResult.plan` for a result file (read, planned, closed)."""
    with SegmentationResult(scene, result_path) as result:
        return result.plan(target_node)


def _plan(result_segments: list[tuple[str, Any]], target_node: Any | None) -> ImportPlan:
    plan = ImportPlan()
    existing = _segments(target_node) if target_node is not None else []
    matched: set[str] = set()
    for _, segment in result_segments:
        name = segment.GetName()
        namesakes = _namesakes(existing, name)
        matched.update(namesakes)
        if not namesakes:
            plan.add.append(name)
            continue
        reasons = [edit_state(target_node, sid) for sid in namesakes]
        reason = next((r for r in reasons if r is not None), None)
        if reason is None:
            plan.replace.append(name)
        else:
            plan.protected[name] = reason
    plan.keep = [s.GetName() for sid, s in existing if sid not in matched]
    return plan


def import_segmentation(scene: Any, result_path: str | os.PathLike[str], volume_node: Any,
                        target_node: Any | None = None, **options: Any) -> ImportReport:
    """:meth:`SegmentationResult.import_into` for a result file (read, imported, closed)."""
    with SegmentationResult(scene, result_path) as result:
        return result.import_into(volume_node, target_node, **options)


def _is_empty(segmentation_node: Any, segment_id: str) -> bool:
    segment = segmentation_node.GetSegmentation().GetSegment(segment_id)
    image = segment.GetRepresentation(BINARY_LABELMAP)
    if image is None:
        return True
    mask, _ = _segment_mask(image, segment.GetLabelValue())
    return not mask.any()


def _new_segmentation_node(scene: Any, volume_node: Any, node_name: str | None) -> Any:
    name = scene.GenerateUniqueName(node_name or f"{volume_node.GetName()} MoME")
    node = scene.AddNewNodeByClass("vtkMRMLSegmentationNode", name)
    node.CreateDefaultDisplayNodes()
    node.SetReferenceImageGeometryParameterFromVolumeNode(volume_node)
    node.SetNodeReferenceID(node.GetReferenceImageGeometryReferenceRole(), volume_node.GetID())
    if volume_node.GetTransformNodeID():
        node.SetAndObserveTransformNodeID(volume_node.GetTransformNodeID())
    _place_next_to(scene, node, volume_node)
    return node


def _place_next_to(scene: Any, node: Any, volume_node: Any) -> None:
    """Put the segmentation in the volume's study (subject hierarchy), as loaded DICOM data is."""
    hierarchy = slicer.vtkMRMLSubjectHierarchyNode.GetSubjectHierarchyNode(scene)
    if hierarchy is None:
        return
    volume_item = hierarchy.GetItemByDataNode(volume_node)
    node_item = hierarchy.GetItemByDataNode(node)
    if volume_item and node_item:
        parent = hierarchy.GetItemParent(volume_item)
        if parent:
            hierarchy.SetItemParent(node_item, parent)


def _copy_segment(source_node: Any, source_id: str, target_node: Any) -> str:
    target = target_node.GetSegmentation()
    before = set(target.GetSegmentIDs())
    if not target.CopySegmentFromSegmentation(source_node.GetSegmentation(), source_id):
        raise ImportError_(f"Segment '{source_id}' could not be added to '{target_node.GetName()}'.")
    (new_id,) = set(target.GetSegmentIDs()) - before
    return new_id


def _binary_labelmap(segment: Any) -> Any | None:
    """The segment alone as a 0/1 image on its own grid. (A segment's representation is the whole
    shared layer, other segments' label values included, and so is what
    ``GetSegmentBinaryLabelmapRepresentation`` copies: writing that into another segment would
    paint the other segments' voxels into it.)"""
    layer = segment.GetRepresentation(BINARY_LABELMAP)
    if layer is None:
        return None
    mask, _ = _segment_mask(layer, segment.GetLabelValue())
    binary = slicer.vtkOrientedImageData()
    binary.ShallowCopy(layer)  # geometry and extent; the scalars are replaced below
    matrix = vtk.vtkMatrix4x4()
    layer.GetImageToWorldMatrix(matrix)
    binary.SetImageToWorldMatrix(matrix)
    scalars = numpy_support.numpy_to_vtk(mask.astype(np.uint8).ravel(), deep=1, array_type=vtk.VTK_UNSIGNED_CHAR)
    if mask.size:
        binary.GetPointData().SetScalars(scalars)
    return binary


def _replace_namesakes(source_node: Any, source_id: str, target_node: Any, algorithm_name: str | None) -> None:
    source_segment = source_node.GetSegmentation().GetSegment(source_id)
    namesakes = _namesakes(_segments(target_node), source_segment.GetName())
    keep_id, extra_ids = namesakes[0], namesakes[1:]
    labelmap = _binary_labelmap(source_segment)
    if labelmap is None:
        raise ImportError_(f"Segment '{source_segment.GetName()}' of MoME's result has no voxel data.")
    if not slicer.vtkSlicerSegmentationsModuleLogic.SetBinaryLabelmapToSegment(
            labelmap, target_node, keep_id, slicer.vtkSlicerSegmentationsModuleLogic.MODE_REPLACE):
        raise ImportError_(f"Segment '{source_segment.GetName()}' could not be replaced.")
    target_segment = target_node.GetSegmentation().GetSegment(keep_id)
    target_segment.SetName(source_segment.GetName())
    target_segment.SetColor(source_segment.GetColor())
    for tag in MOME_TAGS:
        value = get_tag(source_segment, tag)
        if value is not None:
            target_segment.SetTag(tag, value)
        elif tag in RESULT_TAGS:  # an earlier result's status must not outlive it
            target_segment.RemoveTag(tag)
    for extra in extra_ids:  # the structure's other segments (duplicates, an earlier guess): one per structure
        target_node.GetSegmentation().RemoveSegment(extra)
    _stamp(target_node, keep_id, algorithm_name)


# --------------------------------------------------------------------------------------------------
# Display and terminology
# --------------------------------------------------------------------------------------------------


def set_show_3d(segmentation_node: Any, show: bool) -> None:
    """Show the segments as surfaces in 3D views (builds the closed-surface representation)."""
    if segmentation_node is None:
        return
    if show:
        segmentation_node.CreateClosedSurfaceRepresentation()
    else:
        segmentation_node.RemoveClosedSurfaceRepresentation()
    display = segmentation_node.GetDisplayNode()
    if display is not None:
        display.SetVisibility3D(bool(show))


def load_terminology(terminologies_logic: Any, path: str | os.PathLike[str]) -> str | None:
    """Register MoME's terminology context (``MoME.term.json``) so Slicer's terminology selector shows
    the codes of MoME's segments; returns the context name, or None if it could not be loaded."""
    if terminologies_logic is None or not Path(path).is_file():
        return None
    name = terminologies_logic.LoadTerminologyFromFile(str(path))
    return name or None
