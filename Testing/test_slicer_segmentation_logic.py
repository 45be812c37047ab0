"""MoMESegmentation logic on real MRML (slicer-core, no Qt): geometry, import/update rules, process protocol.

* volume node → engine NRRD keeps voxels and geometry, for an LPS and an oblique volume;
* the engine's result (ThresholdModel stand-in, so the right voxels are known) comes back as a
  segmentation whose exported labelmap lies on exactly the volume's IJK→RAS, with names, colours,
  terminology and DICOM algorithm tags;
* updating an existing segmentation: same-name segments replaced in place, other segments kept,
  segments edited by hand (or drawn by hand) detected and only replaced when asked; guesses the
  user opted into ("spleen (not learned)") never take a plain segment's place and never go stale,
  and their reliability tags arrive in the MRML segments;
* the checks before a run: structures the model would only guess are refused unless opted in, a
  volume that does not look like CT stops the run unless the user (a stand-in dialog answer) or
  the script chooses to segment anyway, and a damaged one always does;
* the background process with real subprocesses: the real ``mome segment`` (random tiny model)
  reporting progress and its result, an engine error turned into readable words, cancel killing
  the whole process tree and leaving no output, a crash without an error event.

Skips (saying why) only when slicer-core cannot be imported; tests on real CT need ../shared/data.
"""

from __future__ import annotations

import json
import os
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

try:
    import slicer
    import vtk
    from vtk.util import numpy_support

    slicer.vtkMRMLScene  # noqa: B018 - the slicer-core classes, not some other "slicer" package
except (ImportError, AttributeError) as exc:  # pragma: no cover - depends on the environment
    print(f"SKIP test_slicer_segmentation_logic: slicer-core cannot be imported ({exc}); "
          "install it with `pip install slicer-core`")
    pytest.skip(f"slicer-core cannot be imported ({exc}); `pip install slicer-core`", allow_module_level=True)

import SimpleITK as sitk  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "MoMESegmentation"))

from MoMESegmentationLib import segmentation_io as sio  # noqa: E402
from MoMESegmentationLib.errors import InputCheckError, RefusedStructuresError  # noqa: E402
from MoMESegmentationLib.logic import MoMESegmentationLogic, summary  # noqa: E402
from MoMESegmentationLib.parameters import SegmentationParameters  # noqa: E402
from MoMESegmentationLib.process import EventKind, engine_command  # noqa: E402
from MoMESegmentationLib.segmentation_job import JobRequest, JobState, SegmentationJob  # noqa: E402
from image_fixtures import rotated  # noqa: E402

LEVEL_HU = 37.5
LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0])


# --------------------------------------------------------------------------------------------------
# Scene and volumes
# --------------------------------------------------------------------------------------------------


@pytest.fixture
def scene():
    """A scene with the module logics MoME touches (as trame-slicer's SlicerApp sets them up)."""
    scene = slicer.vtkMRMLScene()
    app = slicer.vtkSlicerApplicationLogic()
    app.SetMRMLScene(scene)
    logics = []

    def register(logic, name):
        logic.SetMRMLApplicationLogic(app)
        logic.SetMRMLScene(scene)
        app.SetModuleLogic(name, logic)
        logics.append(logic)
        return logic

    colors = register(slicer.vtkSlicerColorLogic(), "Colors")
    colors.AddDefaultColorNodes() if hasattr(colors, "AddDefaultColorNodes") else None
    register(slicer.vtkSlicerSubjectHierarchyModuleLogic(), "SubjectHierarchy")
    # Must exist before any segment is added: it registers the representation converters.
    register(slicer.vtkSlicerSegmentationsModuleLogic(), "Segmentations")
    scene._mome_keep = (app, logics)  # keep the logics alive with the scene
    yield scene
    scene.Clear(1)


def volume_from_sitk(scene, image: sitk.Image, name: str = "CT"):
    """A scalar volume node with the image's voxels and geometry (LPS → RAS)."""
    array = sitk.GetArrayFromImage(image)  # (k, j, i)
    data = vtk.vtkImageData()
    data.SetDimensions(image.GetSize())
    data.GetPointData().SetScalars(numpy_support.numpy_to_vtk(array.ravel(), deep=1,
                                                              array_type=numpy_support.get_vtk_array_type(array.dtype)))
    node = scene.AddNewNodeByClass("vtkMRMLScalarVolumeNode", name)
    node.SetAndObserveImageData(data)
    ijk_to_ras = np.eye(4)
    ijk_to_ras[:3, :3] = LPS_TO_RAS @ np.array(image.GetDirection()).reshape(3, 3) @ np.diag(image.GetSpacing())
    ijk_to_ras[:3, 3] = LPS_TO_RAS @ np.array(image.GetOrigin())
    node.SetIJKToRASMatrix(to_vtk(ijk_to_ras))
    node.CreateDefaultDisplayNodes()
    return node


def to_vtk(matrix: np.ndarray):
    m = vtk.vtkMatrix4x4()
    for r in range(4):
        for c in range(4):
            m.SetElement(r, c, float(matrix[r, c]))
    return m


def ijk_to_ras(node) -> np.ndarray:
    m = vtk.vtkMatrix4x4()
    node.GetIJKToRASMatrix(m)
    return np.array([[m.GetElement(r, c) for c in range(4)] for r in range(4)])


def node_array(node) -> np.ndarray:
    data = node.GetImageData()
    i, j, k = data.GetDimensions()
    return numpy_support.vtk_to_numpy(data.GetPointData().GetScalars()).reshape(k, j, i)


@pytest.fixture(scope="module")
def lung_crop(shared_data) -> sitk.Image:
    """A 64×64×16 LPS chest CT crop (every 5th voxel in-plane: body, lungs and mediastinum)."""
    image = sitk.ReadImage(str(shared_data / "pyradiomics_lung" / "lung1_image.nrrd"))
    assert sitk.DICOMOrientImageFilter.GetOrientationFromDirectionCosines(image.GetDirection()) == "LPS"
    return image[96:416:5, 96:416:5, 16:32]


@pytest.fixture(params=["lps", "oblique"])
def ct(request, lung_crop) -> sitk.Image:
    return lung_crop if request.param == "lps" else rotated(lung_crop)


def export_labelmap(scene, segmentation_node, segment_ids, reference_volume):
    labelmap = scene.AddNewNodeByClass("vtkMRMLLabelMapVolumeNode")
    ids = vtk.vtkStringArray()
    for segment_id in segment_ids:
        ids.InsertNextValue(segment_id)
    assert slicer.vtkSlicerSegmentationsModuleLogic.ExportSegmentsToLabelmapNode(
        segmentation_node, ids, labelmap, reference_volume)
    return labelmap


def segment_ids(node) -> list[str]:
    s = node.GetSegmentation()
    return [s.GetNthSegmentID(i) for i in range(s.GetNumberOfSegments())]


def segment_by_name(node, name):
    for segment_id in segment_ids(node):
        segment = node.GetSegmentation().GetSegment(segment_id)
        if segment.GetName() == name:
            return segment_id, segment
    raise KeyError(name)


def segment_mask(scene, node, segment_id, volume) -> np.ndarray:
    return node_array(export_labelmap(scene, node, [segment_id], volume)) > 0


# --------------------------------------------------------------------------------------------------
# Volume → engine file
# --------------------------------------------------------------------------------------------------


def test_volume_node_is_written_with_its_exact_voxels_and_geometry(scene, ct, tmp_path):
    volume = volume_from_sitk(scene, ct)
    path = sio.write_volume_for_engine(volume, tmp_path / "input.nrrd")

    written = sitk.ReadImage(str(path))
    assert np.array_equal(sitk.GetArrayFromImage(written), sitk.GetArrayFromImage(ct))
    assert np.allclose(written.GetSpacing(), ct.GetSpacing(), atol=1e-6)
    assert np.allclose(written.GetOrigin(), ct.GetOrigin(), atol=1e-5)
    assert np.allclose(written.GetDirection(), ct.GetDirection(), atol=1e-6)


def test_inputs_the_engine_cannot_use_are_refused_in_words(scene):
    with pytest.raises(sio.InputVolumeError, match="Select a CT"):
        sio.check_input_volume(None)
    label = scene.AddNewNodeByClass("vtkMRMLLabelMapVolumeNode", "labels")
    with pytest.raises(sio.InputVolumeError, match="not a CT image"):
        sio.check_input_volume(label)
    empty = scene.AddNewNodeByClass("vtkMRMLScalarVolumeNode", "empty")
    with pytest.raises(sio.InputVolumeError, match="no image data"):
        sio.check_input_volume(empty)
    single = volume_from_sitk(scene, sitk.Image(8, 8, 1, sitk.sitkInt16), "slice")
    with pytest.raises(sio.InputVolumeError, match="single slice"):
        sio.check_input_volume(single)


# --------------------------------------------------------------------------------------------------
# Engine result → segmentation node, on the volume's grid
# --------------------------------------------------------------------------------------------------


def run_threshold_engine(engine_input: Path, output: Path, keys=("aorta", "kidney_left")) -> None:
    """What ``mome segment`` does, with the ThresholdModel stand-in as the network (known masks)."""
    from mome.cli.segment import _terminology_entries
    from mome.inference import PostprocessOptions, Segmenter
    from stand_ins import ThresholdModel, random_package
    from mome.io.reading import read_ct
    from mome.io.seg_nrrd import write_seg_nrrd
    from mome.package import Preprocessing

    image = read_ct(engine_input).image
    package = random_package(preprocessing=Preprocessing(spacing=tuple(image.GetSpacing()), patch_size=(64, 64, 32)),
                             class_keys=keys)
    segmenter = Segmenter(package, model=ThresholdModel((LEVEL_HU,)), device="cpu",
                          postprocess=PostprocessOptions(enabled=False))
    result = segmenter.segment(image, list(keys))
    write_seg_nrrd(output, result.masks, image, result.descriptors, "MoME random-test 0.0.0",
                   _terminology_entries(result.classes))


def test_engine_result_lands_on_the_volume_grid_with_names_colours_and_terminology(scene, ct, tmp_path):
    volume = volume_from_sitk(scene, ct)
    engine_input = sio.write_volume_for_engine(volume, tmp_path / "input.nrrd")
    run_threshold_engine(engine_input, tmp_path / "result.seg.nrrd")

    report = sio.import_segmentation(scene, tmp_path / "result.seg.nrrd", volume,
                                     algorithm_name="MoME random-test 0.0.0")
    node = report.segmentation_node
    assert report.created_node and report.added == ["aorta", "left kidney"]
    assert node.GetNodeReferenceID(node.GetReferenceImageGeometryReferenceRole()) == volume.GetID()
    assert scene.GetNodesByClass("vtkMRMLSegmentationNode").GetNumberOfItems() == 1  # temporary node removed

    truth = sitk.GetArrayFromImage(ct) > LEVEL_HU
    assert 0.05 < truth.mean() < 0.95
    for segment_id in segment_ids(node):
        labelmap = export_labelmap(scene, node, [segment_id], volume)
        assert np.allclose(ijk_to_ras(labelmap), ijk_to_ras(volume), atol=1e-6)
        assert labelmap.GetImageData().GetDimensions() == volume.GetImageData().GetDimensions()
        assert np.array_equal(node_array(labelmap) > 0, truth), f"{segment_id} is not on the volume's voxels"

    _, kidney = segment_by_name(node, "left kidney")
    assert kidney.GetColor() != (0.5, 0.5, 0.5)
    entry = kidney.GetTerminology()
    assert "SCT^64033007^Kidney" in entry and "SCT^7771000^Left" in entry
    assert sio.get_tag(kidney, sio.ALGORITHM_TYPE_TAG) == "AUTOMATIC"
    assert sio.get_tag(kidney, sio.ALGORITHM_NAME_TAG) == "MoME random-test 0.0.0"
    assert sio.edited_segments(node) == {}


def test_a_segmentation_under_the_volumes_transform_keeps_world_alignment(scene, lung_crop, tmp_path):
    volume = volume_from_sitk(scene, lung_crop)
    transform = scene.AddNewNodeByClass("vtkMRMLLinearTransformNode")
    shift = np.eye(4)
    shift[:3, 3] = (12.0, -7.0, 30.0)
    transform.SetMatrixTransformToParent(to_vtk(shift))
    volume.SetAndObserveTransformNodeID(transform.GetID())
    write_result(tmp_path / "r.seg.nrrd", lung_crop, {"liver": box(lung_crop, (2, 10, 5, 30, 5, 30))})

    node = sio.import_segmentation(scene, tmp_path / "r.seg.nrrd", volume).segmentation_node
    assert node.GetTransformNodeID() == transform.GetID()
    other = scene.AddNewNodeByClass("vtkMRMLSegmentationNode", "elsewhere")
    with pytest.raises(sio.ImportError_, match="different transform"):
        sio.import_segmentation(scene, tmp_path / "r.seg.nrrd", volume, target_node=other)


# --------------------------------------------------------------------------------------------------
# Updating an existing segmentation
# --------------------------------------------------------------------------------------------------


def box(image: sitk.Image, bounds) -> np.ndarray:
    k0, k1, j0, j1, i0, i1 = bounds
    mask = np.zeros(sitk.GetArrayViewFromImage(image).shape, dtype=bool)
    mask[k0:k1, j0:j1, i0:i1] = True
    return mask


def write_result(path: Path, reference: sitk.Image, masks: dict[str, np.ndarray],
                 statuses: dict[str, str] | None = None) -> Path:
    """A result file as ``mome segment`` writes it, for vocabulary keys → masks; ``statuses`` (key →
    status) adds the reliability tags and, for opted-in ones, the marked names, as the engine does."""
    from dataclasses import replace

    from mome.cli.segment import EVIDENCE_TAG, RELIABILITY_TAG
    from mome.inference.reliability import Reliability
    from mome.io.seg_nrrd import write_seg_nrrd
    from mome.vocabulary import load_vocabulary, slicer_terminology_entry

    vocabulary = load_vocabulary()
    classes = [vocabulary.get(key) for key in masks]
    descriptors, tags = [c.descriptor() for c in classes], None
    if statuses is not None:
        found = [Reliability(c.key, c.name, statuses[c.key], f"Dice figure of {c.key}") for c in classes]
        descriptors = [replace(d, name=r.display_name) for d, r in zip(descriptors, found)]
        tags = [{RELIABILITY_TAG: r.label, EVIDENCE_TAG: r.reason} for r in found]
    write_seg_nrrd(path, list(masks.values()), reference, descriptors, "MoME test 1.0",
                   [slicer_terminology_entry(c) for c in classes], tags)
    return path


def paint(scene, node, segment_id, volume, mask: np.ndarray) -> None:
    """Replace a segment's voxels by hand (what a Segment Editor stroke ends with)."""
    labelmap = scene.AddNewNodeByClass("vtkMRMLLabelMapVolumeNode")
    labelmap.SetIJKToRASMatrix(to_vtk(ijk_to_ras(volume)))
    data = vtk.vtkImageData()
    data.SetDimensions(volume.GetImageData().GetDimensions())
    data.GetPointData().SetScalars(numpy_support.numpy_to_vtk(mask.astype(np.uint8).ravel(), deep=1,
                                                              array_type=vtk.VTK_UNSIGNED_CHAR))
    labelmap.SetAndObserveImageData(data)
    oriented = slicer.vtkSlicerSegmentationsModuleLogic.CreateOrientedImageDataFromVolumeNode(labelmap)
    assert slicer.vtkSlicerSegmentationsModuleLogic.SetBinaryLabelmapToSegment(
        oriented, node, segment_id, slicer.vtkSlicerSegmentationsModuleLogic.MODE_REPLACE)
    scene.RemoveNode(labelmap)


def assert_no_stray_labels(node) -> None:
    """Every label value stored in a layer belongs to a segment of that layer."""
    segmentation = node.GetSegmentation()
    for layer in range(segmentation.GetNumberOfLayers()):
        members = [sid for sid in segment_ids(node) if segmentation.GetLayerIndex(sid) == layer]
        image = segmentation.GetSegment(members[0]).GetRepresentation(sio.BINARY_LABELMAP)
        values = set(np.unique(numpy_support.vtk_to_numpy(image.GetPointData().GetScalars())).tolist())
        labels = {segmentation.GetSegment(sid).GetLabelValue() for sid in members}
        assert values <= labels | {0}, f"layer {layer} holds label values {values - labels - {0}} of no segment"


def add_hand_drawn(scene, node, name, volume, mask) -> str:
    segment_id = node.GetSegmentation().AddEmptySegment("", name, [0.9, 0.9, 0.1])
    paint(scene, node, segment_id, volume, mask)
    return segment_id


def test_update_replaces_namesakes_in_place_keeps_the_rest_and_protects_edited_segments(scene, lung_crop, tmp_path):
    volume = volume_from_sitk(scene, lung_crop)
    first = {"liver": box(lung_crop, (2, 10, 5, 30, 5, 30)), "aorta": box(lung_crop, (0, 16, 30, 40, 30, 40))}
    node = sio.import_segmentation(scene, write_result(tmp_path / "a.seg.nrrd", lung_crop, first), volume,
                                   node_name="Patient MoME").segmentation_node
    aorta_id, _ = segment_by_name(node, "aorta")
    liver_id, _ = segment_by_name(node, "liver")
    node.GetDisplayNode().SetSegmentOpacity2DFill(aorta_id, 0.25)  # a display setting the user chose

    # The user corrects the liver, draws a lesion of their own overlapping the aorta, and a spleen.
    edited_liver = first["liver"].copy()
    edited_liver[4:6, 30:34, 5:30] = True
    paint(scene, node, liver_id, volume, edited_liver)
    lesion = box(lung_crop, (4, 12, 34, 44, 34, 44))
    lesion_id = add_hand_drawn(scene, node, "my lesion", volume, lesion)
    add_hand_drawn(scene, node, "Spleen", volume, box(lung_crop, (2, 6, 45, 55, 45, 55)))
    assert sio.edited_segments(node) == {liver_id: sio.EDITED, lesion_id: sio.NOT_FROM_MOME,
                                         segment_by_name(node, "Spleen")[0]: sio.NOT_FROM_MOME}

    second = {"liver": box(lung_crop, (3, 12, 8, 34, 8, 34)), "aorta": box(lung_crop, (1, 15, 28, 42, 28, 42)),
              "spleen": box(lung_crop, (1, 8, 44, 58, 44, 58)), "kidney_left": box(lung_crop, (5, 9, 50, 60, 10, 20))}
    result = write_result(tmp_path / "b.seg.nrrd", lung_crop, second)

    plan = sio.plan_import(scene, result, node)
    assert plan.add == ["left kidney"]
    assert plan.replace == ["aorta"]
    assert plan.protected == {"liver": sio.EDITED, "spleen": sio.NOT_FROM_MOME}
    assert plan.keep == ["my lesion"]
    assert segment_ids(node)[:2] == [liver_id, aorta_id]  # planning changed nothing

    report = sio.import_segmentation(scene, result, volume, target_node=node, algorithm_name="MoME test 1.1")
    assert (report.added, report.replaced, sorted(report.kept_edited), report.untouched) == (
        ["left kidney"], ["aorta"], ["liver", "spleen"], ["my lesion"])
    # Replaced in place: same ID, same position, display setting kept, new voxels and tags.
    assert segment_ids(node).index(aorta_id) == 1
    assert node.GetDisplayNode().GetSegmentOpacity2DFill(aorta_id) == pytest.approx(0.25)
    assert np.array_equal(segment_mask(scene, node, aorta_id, volume), second["aorta"])
    aorta = node.GetSegmentation().GetSegment(aorta_id)
    assert sio.get_tag(aorta, sio.ALGORITHM_NAME_TAG) == "MoME test 1.1"
    # Kept: the user's liver (now semi-automatic), spleen and lesion, voxel for voxel.
    assert np.array_equal(segment_mask(scene, node, liver_id, volume), edited_liver)
    assert sio.get_tag(node.GetSegmentation().GetSegment(liver_id), sio.ALGORITHM_TYPE_TAG) == "SEMIAUTOMATIC"
    assert np.array_equal(segment_mask(scene, node, lesion_id, volume), lesion)
    assert len([s for s in segment_ids(node) if "spleen" in node.GetSegmentation().GetSegment(s).GetName().lower()]) == 1
    assert_no_stray_labels(node)

    # Asked and answered "replace": the edited liver and hand-drawn spleen become MoME's again.
    report = sio.import_segmentation(scene, result, volume, target_node=node, replace_protected=True)
    assert sorted(report.replaced) == ["aorta", "left kidney", "liver", "spleen"] and report.added == []
    assert np.array_equal(segment_mask(scene, node, liver_id, volume), second["liver"])
    spleen_id, spleen = segment_by_name(node, "spleen")  # MoME's name now
    assert np.array_equal(segment_mask(scene, node, spleen_id, volume), second["spleen"])
    assert np.array_equal(segment_mask(scene, node, lesion_id, volume), lesion)
    assert set(sio.edited_segments(node)) == {lesion_id}
    assert_no_stray_labels(node)


def test_edit_detection_ignores_how_slicer_stores_the_voxels(scene, lung_crop, tmp_path):
    volume = volume_from_sitk(scene, lung_crop)
    overlapping = {"liver": box(lung_crop, (2, 10, 5, 30, 5, 30)),
                   "liver_tumor": box(lung_crop, (4, 6, 10, 15, 10, 15))}
    node = sio.import_segmentation(
        scene, write_result(tmp_path / "a.seg.nrrd", lung_crop, overlapping), volume).segmentation_node
    assert node.GetSegmentation().GetNumberOfLayers() == 2  # overlapping segments on two layers
    slicer.vtkSlicerSegmentationsModuleLogic.CollapseBinaryLabelmaps(node, False)
    assert sio.edited_segments(node) == {}
    liver_id, _ = segment_by_name(node, "liver")
    node.GetSegmentation().SeparateSegmentLabelmap(liver_id)
    assert sio.edited_segments(node) == {}
    smaller = overlapping["liver"].copy()
    smaller[2, 5, 5] = False  # one voxel erased
    paint(scene, node, liver_id, volume, smaller)
    assert sio.edited_segments(node) == {liver_id: sio.EDITED}


def names(node) -> list[str]:
    return [node.GetSegmentation().GetSegment(s).GetName() for s in segment_ids(node)]


def test_marked_guesses_never_take_a_plain_segments_place_and_never_go_stale(scene, lung_crop, tmp_path):
    volume = volume_from_sitk(scene, lung_crop)
    liver = box(lung_crop, (2, 10, 5, 30, 5, 30))
    guess, better, other_guess = (box(lung_crop, b) for b in ((1, 8, 44, 58, 44, 58), (2, 9, 40, 56, 40, 56),
                                                               (3, 7, 46, 54, 46, 54)))
    assert sio.structure_of(" Spleen  (Not Learned)") == ("spleen", True)
    assert sio.structure_of("liver tumor (zero-shot)") == ("liver tumor", True)
    assert sio.structure_of("spleen") == ("spleen", False)

    # An opted-in run: the guess is marked, and the tags the engine wrote arrive in MRML.
    first = write_result(tmp_path / "1.seg.nrrd", lung_crop, {"liver": liver, "spleen": guess},
                         {"liver": "weak", "spleen": "not_learned"})
    node = sio.import_segmentation(scene, first, volume).segmentation_node
    assert names(node) == ["liver", "spleen (not learned)"]
    marked_id, marked = segment_by_name(node, "spleen (not learned)")
    assert sio.get_tag(marked, sio.RELIABILITY_TAG) == "not learned"
    assert sio.get_tag(marked, sio.EVIDENCE_TAG) == "Dice figure of spleen"
    assert sio.get_tag(segment_by_name(node, "liver")[1], sio.RELIABILITY_TAG) == "weak"

    # A later plain result of the structure (a model that learned it) replaces the guess in place:
    # no stale "spleen (not learned)" is left beside it, and the old status goes with it.
    plain = write_result(tmp_path / "2.seg.nrrd", lung_crop, {"spleen": better})
    assert sio.plan_import(scene, plain, node).replace == ["spleen"]
    report = sio.import_segmentation(scene, plain, volume, target_node=node)
    assert report.replaced == ["spleen"] and report.untouched == ["liver"]
    assert names(node) == ["liver", "spleen"] and segment_by_name(node, "spleen")[0] == marked_id
    assert np.array_equal(segment_mask(scene, node, marked_id, volume), better)
    assert sio.get_tag(node.GetSegmentation().GetSegment(marked_id), sio.RELIABILITY_TAG) is None

    # A guess never takes the plain segment's place: it is added beside it, the plain one untouched.
    again = write_result(tmp_path / "3.seg.nrrd", lung_crop, {"spleen": guess}, {"spleen": "not_learned"})
    plan = sio.plan_import(scene, again, node)
    assert (plan.add, plan.replace, plan.keep) == (["spleen (not learned)"], [], ["liver", "spleen"])
    sio.import_segmentation(scene, again, volume, target_node=node)
    assert names(node) == ["liver", "spleen", "spleen (not learned)"]
    assert np.array_equal(segment_mask(scene, node, marked_id, volume), better)

    # Another guess of the structure replaces the earlier guess only (renamed with its new mark).
    guess_id, _ = segment_by_name(node, "spleen (not learned)")
    zero_shot = write_result(tmp_path / "4.seg.nrrd", lung_crop, {"spleen": other_guess}, {"spleen": "zero_shot"})
    assert sio.plan_import(scene, zero_shot, node).replace == ["spleen (zero-shot)"]
    sio.import_segmentation(scene, zero_shot, volume, target_node=node)
    assert names(node) == ["liver", "spleen", "spleen (zero-shot)"]
    assert segment_by_name(node, "spleen (zero-shot)")[0] == guess_id
    assert np.array_equal(segment_mask(scene, node, marked_id, volume), better)
    assert sio.get_tag(node.GetSegmentation().GetSegment(guess_id), sio.RELIABILITY_TAG) == "zero-shot"

    # A guess the user edited is theirs: a plain result asks before replacing it (and the plain one).
    edited = other_guess.copy()
    edited[5, 50, 50:56] = True
    paint(scene, node, guess_id, volume, edited)
    plan = sio.plan_import(scene, plain, node)
    assert plan.protected == {"spleen": sio.EDITED} and plan.replace == []
    report = sio.import_segmentation(scene, plain, volume, target_node=node)  # "keep mine"
    assert report.kept_edited == ["spleen"] and names(node) == ["liver", "spleen", "spleen (zero-shot)"]
    assert np.array_equal(segment_mask(scene, node, guess_id, volume), edited)
    sio.import_segmentation(scene, plain, volume, target_node=node, replace_protected=True)
    assert names(node) == ["liver", "spleen"]  # one segment per structure again
    assert_no_stray_labels(node)


# --------------------------------------------------------------------------------------------------
# Checks before a run: refused structures and the input check
# --------------------------------------------------------------------------------------------------


def logic_with_bundled_model(scene, tmp_path, command=None) -> MoMESegmentationLogic:
    """The logic with no installed model (the bundled mome-mini is the default), and an engine
    command that only sleeps: these tests check what happens before and at the start of a run."""
    (tmp_path / "temp").mkdir(exist_ok=True)
    return MoMESegmentationLogic(scene, command=command or [sys.executable, "-c", "import time; time.sleep(60)"],
                                 environment=dict(os.environ, MOME_HOME=str(tmp_path / "home")),
                                 temp_root=tmp_path / "temp")


def array_volume(scene, array: np.ndarray, name: str):
    image = sitk.GetImageFromArray(array)
    image.SetSpacing((3.0, 3.0, 3.0))
    return volume_from_sitk(scene, image, name)


def test_the_logic_refuses_what_the_model_would_only_guess_unless_opted_in(scene, tmp_path):
    from MoMESegmentationLib import user_workflow

    logic = logic_with_bundled_model(scene, tmp_path)
    volume = user_workflow.synthetic_ct(scene)
    assert logic.input_check(volume).ok

    with pytest.raises(RefusedStructuresError) as refused:  # the script's words; nothing started
        logic.segment(volume, "liver, spleen, liver tumor", device="cpu")
    message = refused.value.message
    assert message.startswith("mome-mini 1.1.0 would only guess these structures")
    assert "spleen — not learned (Dice 0.00" in message and "liver tumor — zero-shot" in message
    assert "pass allow_not_learned=True and allow_zero_shot=True" in message
    assert logic.job is None and not any((tmp_path / "temp").iterdir())

    params = SegmentationParameters("liver, spleen, liver tumor", device="cpu", allow_not_learned=True)
    with pytest.raises(RefusedStructuresError, match="liver tumor") as refused:  # one opt-in, one kind
        logic.check_run(volume, params)
    assert [r["name"] for r in refused.value.refused] == ["liver tumor"]

    params.allow_zero_shot = True
    job = logic.start(volume, params)
    try:
        args = job.arguments()
        assert "--allow-not-learned" in args and "--allow-zero-shot" in args and "--skip-input-check" not in args
        from mome.cli.main import build_parser

        parsed = build_parser().parse_args(args[args.index("segment"):])
        assert parsed.allow_not_learned and parsed.allow_zero_shot and not parsed.skip_input_check
    finally:
        logic.cancel()
        logic.cleanup()


def test_a_volume_that_is_not_ct_stops_the_run_unless_the_user_chooses_segment_anyway(scene, tmp_path):
    from MoMESegmentationLib.parameters import SEGMENT_ANYWAY_LABEL

    logic = logic_with_bundled_model(scene, tmp_path)
    mri_like = array_volume(scene, np.random.default_rng(0).integers(0, 1000, (16, 24, 24)).astype(np.int16),
                            "T1 MRI")
    params = SegmentationParameters("liver, aorta", device="cpu")
    asked = []

    def answer(reply):
        def dialog(error):  # the only stand-in: what the user clicks
            asked.append(error)
            return reply
        return dialog

    assert logic.confirm_run(mri_like, params, answer(False)) is None  # "Cancel": no run
    (error,) = asked
    assert isinstance(error, InputCheckError) and error.overridable and error.code == "no_air"
    assert "'T1 MRI' has no air below -500 HU" in error.message and f"'{SEGMENT_ANYWAY_LABEL}'" in error.message
    assert logic.job is None and not params.skip_input_check

    confirmed = logic.confirm_run(mri_like, params, answer(True))  # "Segment anyway"
    assert confirmed is not None and confirmed.skip_input_check and len(asked) == 2
    job = logic.start(mri_like, confirmed)
    try:
        assert "--skip-input-check" in job.arguments()
    finally:
        logic.cancel()
        logic.cleanup()

    with pytest.raises(InputCheckError, match="pass skip_input_check=True"):  # a script is told its keyword
        logic.segment(mri_like, "liver", device="cpu")
    with pytest.raises(InputCheckError):  # the panel's start never runs it without the answer
        logic.start(mri_like, params)

    damaged = np.full((16, 24, 24), -1000.0, np.float32)
    damaged[4:12, 6:18, 6:18] = 40.0
    damaged[8, 12, 12] = np.nan
    nan_volume = array_volume(scene, damaged, "broken export")
    with pytest.raises(InputCheckError) as raised:
        logic.confirm_run(nan_volume, params, answer(True))
    assert not raised.value.overridable and "damaged" in raised.value.message and len(asked) == 2  # never asked
    with pytest.raises(InputCheckError):
        logic.segment(nan_volume, "liver", skip_input_check=True)  # damage is never overridden
    assert logic.job is None or not logic.job.running


@pytest.fixture(scope="module")
def refusing_engine_jobs(tmp_path_factory):
    """The real ``mome segment`` refusing a not-learned structure and a blank volume (both before
    torch is imported: a few seconds each, run side by side)."""
    folder = tmp_path_factory.mktemp("refusals")
    ct = np.full((16, 24, 24), -1000, np.int16)
    ct[4:12, 6:18, 6:18] = 40
    sitk.WriteImage(sitk.GetImageFromArray(ct), str(folder / "ct.nrrd"))
    sitk.WriteImage(sitk.GetImageFromArray(np.zeros((16, 24, 24), np.int16)), str(folder / "input.nrrd"))
    env = dict(engine_env(), MOME_HOME=str(folder / "home"))
    jobs = {"refused": SegmentationJob(JobRequest(folder / "ct.nrrd", "liver, spleen", device="cpu"),
                                       folder / "out1", command=engine_command(sys.executable), engine_root=REPO,
                                       environment=env),
            "blank": SegmentationJob(JobRequest(folder / "input.nrrd", "liver", device="cpu", input_label="Patient CT"),
                                     folder / "out2", command=engine_command(sys.executable), engine_root=REPO,
                                     environment=env)}
    for job in jobs.values():
        job.start()
    yield {name: job.wait(timeout=180) for name, job in jobs.items()}
    for job in jobs.values():
        job.cancel()


def test_the_engines_refusal_and_input_check_reach_the_user_in_words(refusing_engine_jobs):
    refused = refusing_engine_jobs["refused"]
    assert refused.state is JobState.FAILED and isinstance(refused.error, RefusedStructuresError)
    assert refused.error.message.startswith("mome-mini 1.1.0 would only guess this structure")
    assert "spleen — not learned (Dice 0.00 on 1 patient never seen in training" in refused.error.message
    assert "mome-mini 1.1.0 segments: liver, stomach" in refused.error.message
    assert "--allow" not in refused.error.message and "exit code: 2" in refused.error.details

    blank = refusing_engine_jobs["blank"]
    assert blank.state is JobState.FAILED and isinstance(blank.error, InputCheckError)
    assert blank.error.overridable and blank.error.code == "constant"
    assert "Every voxel of 'Patient CT' has the value 0" in blank.error.message  # the volume, not the temp file
    assert "--skip-input-check" not in blank.error.message and "Segment anyway" in blank.error.message


# --------------------------------------------------------------------------------------------------
# The background process, with real subprocesses
# --------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def small_ct(shared_data) -> sitk.Image:
    image = sitk.ReadImage(str(shared_data / "totalseg_example" / "example_ct_sm.nii.gz"))
    return image[30:90, 20:80, 5:25]  # 60×60×20 at 3 mm: one 64³ window of the tiny model


@pytest.fixture(scope="module")
def tiny_package(tmp_path_factory) -> Path:
    from stand_ins import random_package
    from mome.package import Preprocessing

    from mome.package.evidence import Study, write_evidence

    folder = tmp_path_factory.mktemp("pkg") / "random-tiny"
    preprocessing = Preprocessing(spacing=(3.0, 3.0, 3.0), fast_spacing=(3.0, 3.0, 3.0), patch_size=(64, 64, 64))
    random_package("tiny", preprocessing=preprocessing).save(folder)
    # Figures as a real package carries them: the liver weak, the spleen not learned (refused by default).
    write_evidence(folder, Study("held_out", "0.0.0", "test: two patients", {"liver": (0.5, 2), "spleen": (0.0, 1)}))
    return folder


def engine_env() -> dict[str, str]:
    env = dict(os.environ)
    env["OMP_NUM_THREADS"] = env["MKL_NUM_THREADS"] = "2"
    env["MOME_HOME"] = env.get("MOME_HOME", str(REPO / ".mome-cache" / "test-home"))
    return env


@pytest.fixture(scope="module")
def engine_error_job(small_ct, tmp_path_factory):
    """A real ``mome segment`` run with a misspelt structure, started early: most of its time is
    Python importing torch, which overlaps with the successful run on the second core."""
    folder = tmp_path_factory.mktemp("error-run")
    sitk.WriteImage(small_ct, str(folder / "in.nrrd"))
    job = SegmentationJob(JobRequest(folder / "in.nrrd", "livr, spleen", device="cpu"), folder / "out",
                          command=engine_command(sys.executable), engine_root=REPO, environment=engine_env())
    job.start()
    yield job
    job.cancel()


def test_real_engine_reports_progress_and_its_result_arrives_in_the_scene(scene, small_ct, tiny_package, tmp_path,
                                                                          engine_error_job):
    volume = volume_from_sitk(scene, small_ct, "abdomen")
    logic = MoMESegmentationLogic(scene, command=engine_command(sys.executable), engine_root=REPO,
                              environment=engine_env(), temp_root=tmp_path)
    params = SegmentationParameters(prompts="liver, spleen", model=str(tiny_package), device="cpu", fast=True)
    with pytest.raises(RefusedStructuresError, match="spleen — not learned"):  # refused before anything starts
        logic.run(volume, params)
    assert logic.job is None
    params.allow_not_learned = True
    events = []
    result = logic.run(volume, params, timeout=240, on_event=events.append)

    assert result.outcome.state is JobState.SUCCEEDED, result.outcome.error and result.outcome.error.details
    progress = [e for e in events if e.kind is EventKind.PROGRESS]
    assert progress and {"load", "inference"} <= {e.stage for e in progress}
    fractions = [e.fraction for e in progress if e.stage not in ("load", "write")]
    assert fractions == sorted(fractions) and fractions[-1] == pytest.approx(1.0)
    done = [e for e in events if e.kind is EventKind.DONE]
    assert len(done) == 1 and [c["name"] for c in done[0].data["classes"]] == ["liver", "spleen"]
    assert result.outcome.result["device"] == "cpu"

    node = result.report.segmentation_node
    # The guess the user opted into is marked in its name; each segment carries its reliability.
    assert [node.GetSegmentation().GetSegment(s).GetName() for s in segment_ids(node)] == [
        "liver", "spleen (not learned)"]
    liver, spleen = (node.GetSegmentation().GetSegment(s) for s in segment_ids(node))
    assert sio.get_tag(liver, sio.RELIABILITY_TAG) == "weak"
    assert sio.get_tag(spleen, sio.RELIABILITY_TAG) == "not learned"
    assert sio.get_tag(spleen, sio.EVIDENCE_TAG) == "Dice 0.00 on 1 patient never seen in training (test: two patients)"
    labelmap = export_labelmap(scene, node, segment_ids(node), volume)
    assert np.allclose(ijk_to_ras(labelmap), ijk_to_ras(volume), atol=1e-6)
    algorithm = sio.get_tag(node.GetSegmentation().GetNthSegment(0), sio.ALGORITHM_NAME_TAG)
    assert algorithm == "MoME random-test 0.0.0"
    text = summary(result.outcome, result.report)
    assert "Segmented 2 structures in" in text and "Not validated as accurate: liver (weak)." in text
    assert "Guesses you asked for: spleen (not learned)." in text
    assert not any(tmp_path.iterdir()), "the temporary input and outputs must be removed"


def test_an_engine_error_becomes_a_message_a_clinician_can_act_on(engine_error_job):
    outcome = engine_error_job.wait(timeout=180)

    assert outcome is not None and outcome.state is JobState.FAILED
    message = outcome.error.message
    assert "does not know one of the structure names" in message
    assert "'livr'" in message and "liver" in message  # the engine's suggestion is kept
    assert "mome classes" not in message  # command-line advice is left out
    assert "exit code: 2" in outcome.error.details
    assert not engine_error_job.work_dir.exists()


FAKE_ENGINE = textwrap.dedent("""
    import json, os, subprocess, sys, time
    args = sys.argv[1:]
    output = args[args.index("--output") + 1]
    mode = os.environ["FAKE_MODE"]
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    with open(os.environ["FAKE_PIDS"], "w") as f:
        f.write(f"{os.getpid()} {child.pid}")
    open(output + ".partial", "w").write("half-written")
    print("a log line that is not JSON", flush=True)
    print(json.dumps({"event": "progress", "stage": "inference", "fraction": 0.3, "message": "window 1/3"}), flush=True)
    if mode == "crash":
        child.kill()
        os.kill(os.getpid(), 9)
    time.sleep(120)
""")


def _dead(pid: int) -> bool:
    stat = Path(f"/proc/{pid}/stat")
    if stat.parent.parent.is_dir() and Path("/proc/self").exists():
        try:
            return stat.read_text().split(")")[-1].split()[0] in ("Z", "X")
        except (FileNotFoundError, ProcessLookupError):
            return True
    try:
        os.kill(pid, 0)
    except OSError:
        return True
    return False


def start_fake(tmp_path: Path, mode: str) -> SegmentationJob:
    script = tmp_path / "fake_engine.py"
    script.write_text(FAKE_ENGINE)
    env = dict(os.environ, FAKE_MODE=mode, FAKE_PIDS=str(tmp_path / "pids.txt"))
    job = SegmentationJob(JobRequest(tmp_path / "in.nrrd", "liver"), tmp_path / "out",
                          command=[sys.executable, str(script)], environment=env)
    job.start()
    return job


@pytest.mark.skipif(os.name == "nt", reason="process-group check written for POSIX")
def test_cancel_kills_the_whole_process_tree_and_leaves_no_output(tmp_path):
    job = start_fake(tmp_path, "hang")
    events = []
    deadline = time.monotonic() + 30
    while not any(e.kind is EventKind.PROGRESS for e in events) and time.monotonic() < deadline:
        events += job.poll()
        time.sleep(0.05)
    assert job.fraction == pytest.approx(0.3) and job.message == "window 1/3"
    assert any(e.kind is EventKind.LOG and "not JSON" in e.message for e in events)
    pids = [int(p) for p in (tmp_path / "pids.txt").read_text().split()]
    assert (tmp_path / "out" / "result.seg.nrrd.partial").exists()

    job.cancel()

    assert job.state is JobState.CANCELLED and job.outcome.error is None
    deadline = time.monotonic() + 10
    while not all(_dead(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert all(_dead(p) for p in pids), "the engine and the process it started must both be gone"
    assert not (tmp_path / "out").exists()


@pytest.mark.skipif(os.name == "nt", reason="uses SIGKILL")
def test_a_crash_without_an_error_event_is_still_explained(tmp_path):
    job = start_fake(tmp_path, "crash")
    outcome = job.wait(timeout=30)
    assert outcome.state is JobState.FAILED
    assert "stopped unexpectedly" in outcome.error.message
    assert "killed by signal 9" in outcome.error.details and "not JSON" in outcome.error.details
    assert not (tmp_path / "out").exists()


@pytest.mark.skipif(os.name == "nt", reason="uses SIGKILL")
def test_a_failed_run_leaves_no_temporary_files(scene, tmp_path):
    script = tmp_path / "fake_engine.py"
    script.write_text(FAKE_ENGINE)
    volume = volume_from_sitk(scene, sitk.Image(8, 8, 4, sitk.sitkInt16), "tiny")
    temp_root = tmp_path / "temp"
    temp_root.mkdir()
    logic = MoMESegmentationLogic(scene, command=[sys.executable, str(script)], temp_root=temp_root,
                              environment=dict(os.environ, FAKE_MODE="crash", FAKE_PIDS=str(tmp_path / "pids")))
    result = logic.run(volume, SegmentationParameters("liver", skip_input_check=True), timeout=30)  # blank on purpose
    assert result.outcome.state is JobState.FAILED and result.report is None
    assert not any(temp_root.iterdir())
    assert summary(result.outcome, None).startswith("Failed after")


def test_the_command_line_is_the_engines_documented_one(tmp_path):
    request = JobRequest(tmp_path / "in.nrrd", "liver, spleen", model="/models/x", device="cuda", fast=True)
    job = SegmentationJob(request, tmp_path / "out", command=["PythonSlicer", "-m", "mome.cli.main"],
                          engine_root=tmp_path / "engine", environment={"PYTHONPATH": "/elsewhere"})
    args = job.arguments()
    assert args[:5] == ["PythonSlicer", "-m", "mome.cli.main", "segment", str(tmp_path / "in.nrrd")]
    for flag, value in (("--prompts", "liver, spleen"), ("--output", str(job.segmentation_path)),
                        ("--progress", "json"), ("--model", "/models/x"), ("--device", "cuda")):
        assert args[args.index(flag) + 1] == value
    assert "--fast" in args
    assert "--labelmap" not in args  # Slicer reads only the .seg.nrrd
    env = job.process_environment()
    assert env["PYTHONPATH"].split(os.pathsep) == [str(tmp_path / "engine"), "/elsewhere"]
    # Every flag exists in the real parser.
    from mome.cli.main import build_parser

    parsed = build_parser().parse_args(args[3:])
    assert parsed.progress == "json" and parsed.fast and parsed.device == "cuda"


def test_result_json_lines_are_parsed_and_other_lines_are_log(tmp_path):
    from MoMESegmentationLib.process import parse_line

    event = parse_line(json.dumps({"event": "error", "message": "boom", "details": "trace"}))
    assert (event.kind, event.message, event.details) == (EventKind.ERROR, "boom", "trace")
    assert parse_line('{"event": "weird"}').kind is EventKind.LOG
    assert parse_line("{not json").kind is EventKind.LOG
    assert parse_line(json.dumps({"event": "progress", "stage": "x", "fraction": 0.5})).fraction == 0.5


def test_the_panel_reads_a_result_once_and_checks_each_namesake_once(scene, lung_crop, tmp_path, monkeypatch):
    """Planning (to ask about edited segments) and importing share one read of the result and one
    edit check per namesake segment."""
    from types import SimpleNamespace

    from MoMESegmentationLib.segmentation_job import JobOutcome

    volume = volume_from_sitk(scene, lung_crop)
    first = {"liver": box(lung_crop, (2, 10, 5, 30, 5, 30)), "aorta": box(lung_crop, (0, 16, 30, 40, 30, 40))}
    node = sio.import_segmentation(scene, write_result(tmp_path / "a.seg.nrrd", lung_crop, first),
                                   volume).segmentation_node
    second = dict(first, spleen=box(lung_crop, (1, 8, 44, 58, 44, 58)))
    result = write_result(tmp_path / "b.seg.nrrd", lung_crop, second)

    reads, checks = [], []
    storage_class, edit_state = slicer.vtkMRMLSegmentationStorageNode, sio.edit_state
    monkeypatch.setattr(sio.slicer, "vtkMRMLSegmentationStorageNode", lambda: reads.append(1) or storage_class())
    monkeypatch.setattr(sio, "edit_state", lambda n, s: checks.append(s) or edit_state(n, s))
    logic = MoMESegmentationLogic(scene, temp_root=tmp_path)
    logic.job = SimpleNamespace(running=False, outcome=JobOutcome(JobState.SUCCEEDED, result, {"classes": []}))
    logic.volume_node = volume

    plan = logic.plan_import(node)
    report = logic.import_result(node)
    assert (plan.add, sorted(plan.replace)) == (["spleen"], ["aorta", "liver"])
    assert (report.added, sorted(report.replaced)) == (["spleen"], ["aorta", "liver"])
    assert len(reads) == 1 and len(checks) == 2
    logic.cleanup()
    assert scene.GetNodesByName("MoME result").GetNumberOfItems() == 0  # the hidden copy is gone
