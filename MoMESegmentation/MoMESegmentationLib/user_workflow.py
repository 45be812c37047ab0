"""What a user does with MoME Segmentation, as checks that fail with a reason (``AssertionError``).

Run inside Slicer by ``MoMESegmentationTest`` (``slicer_add_python_unittest``) and under pytest
with slicer-core by ``Testing/test_slicer_self_tests.py``, on the logic the panel uses and the real
engine: load a CT, segment it, check names, terminology and geometry, update the segmentation
without losing a segment drawn by hand, cancel a run, and be stopped before a run that would give
a guess (a structure the model has not learned, a volume that is not CT). Qt-free: every function
takes the logic (whose ``scene`` it works in) and nodes.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import slicer
import vtk
from vtk.util import numpy_support

from . import segmentation_io
from .errors import InputCheckError, RefusedStructuresError
from .logic import MoMESegmentationLogic
from .parameters import SegmentationParameters
from .segmentation_job import JobState

#: SNOMED CT codes the segments must carry (``Resources/Vocabulary``).
EXPECTED_CODES = {"liver": "10200004", "aorta": "15825003"}


def ct_volume(logic: MoMESegmentationLogic) -> Any:
    """The sample CT that ships with MoME, or, where it is missing, a CT built from numpy."""
    try:
        return logic.load_sample()
    except (KeyError, FileNotFoundError):
        return synthetic_ct(logic.scene)


def synthetic_ct(scene: Any) -> Any:
    """A 96×96×48 abdomen-like phantom in Hounsfield units (air, body, a liver-like block, an aorta)."""
    k, j, i = np.mgrid[0:48, 0:96, 0:96]
    ct = np.full((48, 96, 96), -1000, dtype=np.int16)
    ct[((j - 48) / 40.0) ** 2 + ((i - 48) / 44.0) ** 2 <= 1] = 30
    ct[(j > 30) & (j < 62) & (i > 18) & (i < 46)] = 60
    ct[((j - 58) ** 2 + (i - 52) ** 2) <= 16] = 200
    node = scene.AddNewNodeByClass("vtkMRMLScalarVolumeNode", scene.GenerateUniqueName("MoME test CT"))
    data = vtk.vtkImageData()
    data.SetDimensions(96, 96, 48)
    data.GetPointData().SetScalars(numpy_support.numpy_to_vtk(ct.ravel(), deep=1, array_type=vtk.VTK_SHORT))
    node.SetAndObserveImageData(data)
    node.SetSpacing(3.0, 3.0, 3.0)
    node.SetOrigin(-144.0, -144.0, -72.0)
    node.CreateDefaultDisplayNodes()
    return node


def check_volume_export(scene: Any) -> None:
    """The volume the engine gets has the node's voxels and geometry."""
    volume = synthetic_ct(scene)
    with tempfile.TemporaryDirectory() as folder:
        path = segmentation_io.write_volume_for_engine(volume, Path(folder) / "input.nrrd")
        loaded = segmentation_io.read_volume(scene, path, "reloaded")
        assert _array(loaded.GetImageData()).tolist() == _array(volume.GetImageData()).tolist(), "voxels changed"
        assert np.allclose(_ijk_to_ras(loaded), _ijk_to_ras(volume), atol=1e-4), "geometry changed"


def check_segment(logic: MoMESegmentationLogic, volume: Any, prompts: str = "liver, aorta", **run: Any) -> Any:
    """Segment and check: one segment per structure, in order, with MoME's SNOMED CT codes and
    algorithm tags, on exactly the volume's grid; returns the segmentation node."""
    node = logic.segment(volume, prompts, **run)
    names = [s.GetName() for s in _segments(node)]
    wanted = [p.strip() for p in prompts.split(",")]
    assert names == wanted, f"segment names {names}, expected {wanted}"
    for segment in _segments(node):
        entry = segmentation_io.get_tag(segment, segmentation_io.TERMINOLOGY_TAG) or ""
        code = EXPECTED_CODES.get(segment.GetName())
        assert code is None or f"SCT^{code}^" in entry, f"{segment.GetName()}: terminology {entry!r}"
        assert segmentation_io.get_tag(segment, segmentation_io.ALGORITHM_TYPE_TAG) == "AUTOMATIC"
        assert (segmentation_io.get_tag(segment, segmentation_io.ALGORITHM_NAME_TAG) or "").startswith("MoME")
    assert node.GetNodeReference(node.GetReferenceImageGeometryReferenceRole()) is volume
    labelmap = _export(logic.scene, node, volume)
    assert np.allclose(_ijk_to_ras(labelmap), _ijk_to_ras(volume), atol=1e-4), "not on the volume's grid"
    assert labelmap.GetImageData().GetDimensions() == volume.GetImageData().GetDimensions()
    logic.scene.RemoveNode(labelmap)
    return node


def check_update(logic: MoMESegmentationLogic, volume: Any, node: Any, **run: Any) -> None:
    """Running again into the same segmentation replaces MoME's segment in place and keeps one the
    user drew."""
    liver_id = next(sid for sid, s in _segment_items(node) if s.GetName() == "liver")
    drawn_id = node.GetSegmentation().AddEmptySegment("", "my note", [0.9, 0.9, 0.1])
    updated = logic.segment(volume, "liver", segmentation_node=node, **run)
    assert updated is node, "the existing segmentation must be updated, not replaced"
    ids = [sid for sid, _ in _segment_items(node)]
    assert liver_id in ids and drawn_id in ids, f"segments after the update: {ids}"
    assert [s.GetName() for s in _segments(node)].count("liver") == 1


def check_cancel(logic: MoMESegmentationLogic, volume: Any, **options: Any) -> None:
    """Cancel right after the start: no result, no new node, no temporary files."""
    before = logic.scene.GetNumberOfNodesByClass("vtkMRMLSegmentationNode")
    job = logic.start(volume, SegmentationParameters(prompts="liver", **options))
    session = logic.session_dir
    logic.cancel()
    assert job.state is JobState.CANCELLED and job.outcome is not None and job.outcome.error is None
    logic.cleanup()
    assert session is not None and not session.exists(), "temporary files were left behind"
    assert logic.scene.GetNumberOfNodesByClass("vtkMRMLSegmentationNode") == before


def check_refusals(logic: MoMESegmentationLogic, volume: Any) -> None:
    """A structure the selected (default) model has not learned is refused unless opted in, and a
    blank volume is stopped unless the user chooses "Segment anyway"; nothing starts in either case."""
    from mome.package.evidence import class_statuses

    meta, problem = logic.model_metadata(None)
    assert meta is not None, problem
    names = {c["key"]: c.get("name", c["key"]) for c in meta.get("classes", [])}
    not_learned = [names[k] for k, found in class_statuses(meta).items() if found.status == "not_learned"]
    if not_learned:  # the active model may have learned everything; then only the input check is left
        try:
            logic.segment(volume, not_learned[0])
        except RefusedStructuresError as exc:
            assert not_learned[0] in exc.message and "allow_not_learned=True" in exc.message, exc.message
        else:
            raise AssertionError(f"'{not_learned[0]}' was not refused")
        logic.check_run(volume, SegmentationParameters(prompts=not_learned[0], allow_not_learned=True))
    blank = logic.scene.AddNewNodeByClass("vtkMRMLScalarVolumeNode", logic.scene.GenerateUniqueName("blank"))
    data = vtk.vtkImageData()
    data.SetDimensions(16, 16, 8)
    data.AllocateScalars(vtk.VTK_SHORT, 1)
    data.GetPointData().GetScalars().Fill(0)
    blank.SetAndObserveImageData(data)
    asked = []
    assert logic.confirm_run(blank, SegmentationParameters(prompts="liver"), asked.append) is None
    assert len(asked) == 1 and isinstance(asked[0], InputCheckError) and asked[0].overridable
    assert logic.job is None or not logic.job.running, "nothing may start"
    logic.scene.RemoveNode(blank)


def _segment_items(node: Any) -> list[tuple[str, Any]]:
    segmentation = node.GetSegmentation()
    return [(segmentation.GetNthSegmentID(i), segmentation.GetNthSegment(i))
            for i in range(segmentation.GetNumberOfSegments())]


def _segments(node: Any) -> list[Any]:
    return [segment for _, segment in _segment_items(node)]


def _export(scene: Any, node: Any, volume: Any) -> Any:
    labelmap = scene.AddNewNodeByClass("vtkMRMLLabelMapVolumeNode")
    ids = vtk.vtkStringArray()
    for segment_id, _ in _segment_items(node):
        ids.InsertNextValue(segment_id)
    assert slicer.vtkSlicerSegmentationsModuleLogic.ExportSegmentsToLabelmapNode(node, ids, labelmap, volume)
    return labelmap


def _ijk_to_ras(node: Any) -> np.ndarray:
    matrix = vtk.vtkMatrix4x4()
    node.GetIJKToRASMatrix(matrix)
    return np.array([[matrix.GetElement(r, c) for c in range(4)] for r in range(4)])


def _array(image: Any) -> np.ndarray:
    return numpy_support.vtk_to_numpy(image.GetPointData().GetScalars())
