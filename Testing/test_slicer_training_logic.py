"""MoMETraining's Qt-free logic under slicer-core (real MRML, no Slicer application, no mocks of MRML).

* dataset builder: scene (volume, segmentation) pairs made from the real TotalSegmentator example CT
  and its label map, plus a folder of .seg.nrrd files — manifest, mapping by terminology and by
  name, per-class counts, every problem kind, and the engine reading back what was written;
* training process: a real `mome finetune` subprocess on a tiny random base model, Stop (SIGTERM →
  checkpoint) and Resume to the end, parsed progress events;
* model store logic: install of the new package as a new version, set active, rollback, compare.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from pathlib import Path

import numpy as np
import pytest

slicer = pytest.importorskip("slicer", reason="slicer-core is not installed (pip install slicer-core)")
if not hasattr(slicer, "vtkMRMLScene"):
    pytest.skip("the 'slicer' package here is not slicer-core", allow_module_level=True)

import SimpleITK as sitk  # noqa: E402
from slicer.util import updateVolumeFromArray  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "MoMETraining"), str(REPO / "MoMESegmentation")]  # Training uses Segmentation's Lib

from MoMETrainingLib import dataset_builder as db  # noqa: E402
from MoMETrainingLib.dataset_builder import BuildOptions, CaseSource, DatasetBuilder  # noqa: E402
from MoMETrainingLib.model_store_logic import ModelStoreLogic  # noqa: E402
from MoMETrainingLib.presets import FULL_RETRAIN, PRESETS, QUICK_ADAPT  # noqa: E402
from MoMESegmentationLib.process import SubprocessRunner, parse_line  # noqa: E402
from MoMETrainingLib.training_process import (  # noqa: E402
    State,
    TrainingProcess,
    TrainingRequest,
    training_event,
)

SPLEEN, KIDNEY_R, KIDNEY_L, LIVER = 1, 2, 3, 5  # TotalSegmentator v2 "total" label values
# What Slicer's Segment Editor writes when the user picks Liver / Spleen from its own terminology list:
# another context name than MoME's, so only the codes can match.
SLICER_LIVER = ("Segmentation category and type - 3D Slicer General Anatomy list~SCT^123037004^Anatomical Structure"
                "~SCT^10200004^Liver~^^~Anatomic codes - DICOM master list~^^~^^")
SLICER_SPLEEN = ("Segmentation category and type - 3D Slicer General Anatomy list~SCT^123037004^Anatomical Structure"
                 "~SCT^78961009^Spleen~^^~Anatomic codes - DICOM master list~^^~^^")


# ---------------------------------------------------------------------- scene helpers
def new_scene():
    scene = slicer.vtkMRMLScene()
    app = slicer.vtkSlicerApplicationLogic()
    app.SetMRMLScene(scene)
    colors = slicer.vtkSlicerColorLogic()
    colors.SetMRMLApplicationLogic(app)
    colors.SetMRMLScene(scene)  # default color tables: quiet label map display nodes
    segmentations = slicer.vtkSlicerSegmentationsModuleLogic()  # before any segment exists
    segmentations.SetMRMLScene(scene)
    scene._keep = (app, colors)  # keep the logics alive with the scene
    return scene, segmentations


def load_volume(scene, path: Path, name: str):
    node = scene.AddNewNodeByClass("vtkMRMLScalarVolumeNode", name)
    storage = slicer.vtkMRMLVolumeArchetypeStorageNode()
    scene.AddNode(storage)
    storage.SetFileName(str(path))
    assert storage.ReadData(node)
    return node


def add_segmentation(scene, volume, labels: np.ndarray, segments: list[tuple[int, str, str | None]], name: str,
                     reference=None):
    """Segments from label values: (value, segment name, terminology entry or None = Slicer's default)."""
    labelmap = scene.AddNewNodeByClass("vtkMRMLLabelMapVolumeNode", f"{name} labels")
    labelmap.CopyOrientation(reference or volume)
    seg = scene.AddNewNodeByClass("vtkMRMLSegmentationNode", name)
    seg.SetReferenceImageGeometryParameterFromVolumeNode(reference or volume)
    import vtk

    for value, segment_name, entry in segments:
        segment_id = seg.GetSegmentation().AddEmptySegment("", segment_name)
        updateVolumeFromArray(labelmap, (labels == value).astype(np.uint8))
        labelmap.CopyOrientation(reference or volume)
        ids = vtk.vtkStringArray()
        ids.InsertNextValue(segment_id)
        if (labels == value).any():
            assert slicer.vtkSlicerSegmentationsModuleLogic.ImportLabelmapToSegmentationNode(labelmap, seg, ids)
        if entry:
            seg.GetSegmentation().GetSegment(segment_id).SetTag("TerminologyEntry", entry)
    scene.RemoveNode(labelmap)
    return seg


@pytest.fixture(scope="module")
def example(shared_data, tmp_path_factory):
    """Three 64×64×30 crops (3 mm) of the real example CT with their TotalSegmentator labels: small
    enough for one 64³ window of the tiny model, so the training subprocess stays fast on 2 cores."""
    folder = tmp_path_factory.mktemp("example")
    ct = sitk.ReadImage(str(shared_data / "totalseg_example" / "example_ct_sm.nii.gz"))
    labels = sitk.ReadImage(str(shared_data / "totalseg_example" / "example_seg.nii.gz"))
    crops = {"ct_a": (slice(10, 74), slice(22, 86), slice(0, 30)),  # spleen, part of the liver
             "ct_b": (slice(24, 88), slice(16, 80), slice(0, 30)),  # both kidneys
             "ct_c": (slice(30, 94), slice(20, 84), slice(0, 30))}  # liver, spleen, left kidney
    out = {}
    for name, (x, y, z) in crops.items():
        sitk.WriteImage(ct[x, y, z], str(folder / f"{name}.nrrd"))
        out[name] = (folder / f"{name}.nrrd", sitk.GetArrayFromImage(labels[x, y, z]))
    return out


@pytest.fixture(scope="module")
def built(example, tmp_path_factory):
    """The dataset built from a scene with every kind of case, and a folder."""
    scene, segmentations = new_scene()
    vol = {k: load_volume(scene, path, k) for k, (path, _) in example.items()}
    lab = {k: arr for k, (_, arr) in example.items()}
    # a: liver and spleen chosen from Slicer's terminology, names left at Slicer's defaults; plus an
    #    unmapped segment and an empty one
    seg_a = add_segmentation(scene, vol["ct_a"], lab["ct_a"], [
        (LIVER, "Segment_1", SLICER_LIVER), (SPLEEN, "Segment_2", SLICER_SPLEEN),
        (6, "my annotation", None), (999, "aorta", None)], "seg a")
    # b: kidneys named by hand, default ("Tissue") terminology: mapped by name
    seg_b = add_segmentation(scene, vol["ct_b"], lab["ct_b"], [
        (KIDNEY_L, "left kidney", None), (KIDNEY_R, "Kidney R", None)], "seg b")
    # c: liver by name, spleen by terminology, kidney by name; the liver's top half is a second
    #    segment coded as liver (the two are merged)
    labels_c = lab["ct_c"].copy()
    labels_c[15:][labels_c[15:] == LIVER] = 105
    seg_c = add_segmentation(scene, vol["ct_c"], labels_c, [
        (LIVER, "Liver", None), (SPLEEN, "Segment_3", SLICER_SPLEEN), (KIDNEY_L, "kidney left", None),
        (105, "Segment_4", SLICER_LIVER)], "seg c")
    # d: drawn on another volume: the segmentation lies far from ct_a
    far = scene.AddNewNodeByClass("vtkMRMLScalarVolumeNode", "other scan")
    far.CopyOrientation(vol["ct_a"])
    far.SetOrigin(vol["ct_a"].GetOrigin()[0] + 1000, vol["ct_a"].GetOrigin()[1], vol["ct_a"].GetOrigin()[2])
    updateVolumeFromArray(far, np.zeros_like(lab["ct_a"], dtype=np.int16))
    seg_d = add_segmentation(scene, vol["ct_a"], lab["ct_a"], [(LIVER, "liver", None)], "seg d", reference=far)
    # e: a segmentation without any volume
    seg_e = scene.AddNewNodeByClass("vtkMRMLSegmentationNode", "seg e")

    # folder: one good case written as files by Slicer's storage nodes, and a .seg.nrrd without image
    folder = tmp_path_factory.mktemp("folder")
    seg_f = add_segmentation(scene, vol["ct_b"], lab["ct_b"], [(SPLEEN, "spleen", None), (LIVER, "liver", None)],
                             "seg f")
    for node, path in ((vol["ct_b"], folder / "case_f.nrrd"), (seg_f, folder / "case_f.seg.nrrd"),
                       (seg_f, folder / "orphan.seg.nrrd")):
        storage = node.CreateDefaultStorageNode()
        storage.SetFileName(str(path))
        assert storage.WriteData(node)
    scene.RemoveNode(seg_f)

    nodes_before = scene.GetNumberOfNodes()
    work = tmp_path_factory.mktemp("work")
    started = time.perf_counter()
    report = DatasetBuilder(scene, segmentations_logic=segmentations).build(
        [CaseSource(seg_a, vol["ct_a"]), CaseSource(seg_b, vol["ct_b"]), CaseSource(seg_c, vol["ct_c"]),
         CaseSource(seg_d, vol["ct_a"], case_id="seg_d"), CaseSource(seg_e, None, case_id="seg_e")],
        work, folder=folder, options=BuildOptions(name="test-data"))
    seconds = time.perf_counter() - started
    return {"report": report, "scene": scene, "nodes_before": nodes_before, "seconds": seconds, "work": work}


# ---------------------------------------------------------------------- dataset builder
def test_manifest_cases_and_split(built):
    report = built["report"]
    assert report.ok, [p.message for p in report.errors]
    manifest = json.loads(report.manifest_path.read_text())
    cases = manifest["datasets"][0]["cases"]
    assert {c["id"] for c in cases} == {"case_f", "ct_a", "ct_b", "ct_c"}
    splits = {c["id"]: c["split"] for c in cases}
    assert sorted(splits.values()).count("val") == 1  # one case held out of >= 3
    # the held-out case's classes all stay in training
    held = next(c for c in report.cases if c.split == "val")
    train_classes = {k for c in report.cases if c.split == "train" for k in c.classes}
    assert set(held.classes) <= train_classes
    for case in cases:
        assert (built["work"] / case["image"]).is_file() and (built["work"] / case["seg_nrrd"]).is_file()
    assert (built["work"] / "report.json").is_file()
    # the builder removed every node it added
    assert built["scene"].GetNumberOfNodes() == built["nodes_before"]
    assert built["seconds"] < 30


def test_class_mapping_by_terminology_then_name(built):
    cases = {c.id: c for c in built["report"].cases}
    seg = {s.name: s for s in cases["ct_a"].segments}
    assert (seg["Segment_1"].class_key, seg["Segment_1"].mapped_by) == ("liver", "terminology")
    assert (seg["Segment_2"].class_key, seg["Segment_2"].mapped_by) == ("spleen", "terminology")
    seg = {s.name: s for s in cases["ct_b"].segments}
    assert (seg["left kidney"].class_key, seg["left kidney"].mapped_by) == ("kidney_left", "name")
    assert (seg["Kidney R"].class_key, seg["Kidney R"].mapped_by) == ("kidney_right", "name")
    assert cases["ct_a"].classes == ["liver", "spleen"]  # partial labels: only its own classes
    assert sorted(cases["ct_c"].classes) == ["kidney_left", "liver", "spleen"]


def test_class_counts(built):
    counts = built["report"].class_counts()
    assert counts["liver"]["total"] == 3  # ct_a, ct_c, case_f
    assert counts["spleen"]["total"] == 3
    assert counts["kidney_left"]["total"] == 2
    assert counts["kidney_right"]["total"] == 1
    assert sum(row["val"] for row in counts.values()) >= 1
    assert all(row["train"] + row["val"] == row["total"] for row in counts.values())


def test_problem_reports(built):
    report = built["report"]
    by_kind = {k: report.problems_of(k) for k in {p.kind for p in report.problems}}
    unmapped = by_kind[db.UNMAPPED_SEGMENT]
    assert [(p.case, p.segment, p.severity) for p in unmapped] == [("ct_a", "my annotation", "warning")]
    assert [(p.case, p.segment) for p in by_kind[db.EMPTY_SEGMENT]] == [("ct_a", "aorta")]
    mismatch = by_kind[db.GEOMETRY_MISMATCH]
    assert any(p.case == "seg_d" and p.segment == "liver" and "outside" in p.message for p in mismatch)
    assert any(p.case == "seg_d" and p.kind == db.NO_USABLE_SEGMENTS and p.severity == "error"
               for p in report.problems)
    missing = {p.case for p in by_kind[db.VOLUME_MISSING]}
    assert missing == {"seg_e", "orphan"}
    assert all(p.severity == "error" for p in by_kind[db.VOLUME_MISSING])
    left_out = {c.id for c in report.cases if not c.included}
    assert left_out == {"seg_d", "seg_e", "orphan"}
    json.dumps(report.to_dict())  # the widget and report.json need it serialisable


def test_engine_reads_the_dataset(built, example):
    """The engine's manifest loader, validation and mask reading agree with the builder, voxel for voxel."""
    from mome.training.data import case_masks, validate_manifest
    from mome.training.manifest import load_manifest
    from mome.vocabulary import load_vocabulary

    report = built["report"]
    manifest = load_manifest(report.manifest_path)
    assert validate_manifest(manifest, load_vocabulary()) == []
    engine_counts = manifest.class_case_counts()
    assert engine_counts == {k: v["total"] for k, v in report.class_counts().items()}
    case = next(c for c in manifest.cases() if c.id == "ct_c")
    image = sitk.ReadImage(str(case.image))
    masks = {k: sitk.GetArrayFromImage(m).astype(bool) for k, m in case_masks(case, image).items()}
    labels = example["ct_c"][1]
    assert np.array_equal(masks["liver"], labels == LIVER)
    assert np.array_equal(masks["spleen"], labels == SPLEEN)
    assert np.array_equal(masks["kidney_left"], labels == KIDNEY_L)
    original = sitk.ReadImage(str(example["ct_c"][0]))
    assert np.array_equal(sitk.GetArrayFromImage(image), sitk.GetArrayFromImage(original))
    assert np.allclose(image.GetOrigin(), original.GetOrigin(), atol=1e-4)
    assert np.allclose(image.GetDirection(), original.GetDirection())


def test_duplicate_segments_are_merged(built):
    duplicates = built["report"].problems_of(db.DUPLICATE_CLASS)
    assert [(p.case, p.segment, p.severity) for p in duplicates] == [("ct_c", "Segment_4", "warning")]
    # test_engine_reads_the_dataset checks that the merged liver is the whole liver


def test_segments_drawn_as_surfaces(example, tmp_path):
    """A segmentation whose source representation is a closed surface (e.g. imported from a model)."""
    import vtk

    scene, segmentations = new_scene()
    volume = load_volume(scene, example["ct_a"][0], "ct_a")
    bounds = [0.0] * 6
    volume.GetRASBounds(bounds)
    sphere = vtk.vtkSphereSource()
    sphere.SetCenter([(bounds[2 * i] + bounds[2 * i + 1]) / 2 for i in range(3)])
    sphere.SetRadius(20)
    sphere.SetThetaResolution(24)
    sphere.SetPhiResolution(24)
    sphere.Update()
    model = scene.AddNewNodeByClass("vtkMRMLModelNode", "spleen")
    model.SetAndObservePolyData(sphere.GetOutput())
    seg = scene.AddNewNodeByClass("vtkMRMLSegmentationNode", "from model")
    seg.GetSegmentation().SetSourceRepresentationName("Closed surface")
    assert segmentations.ImportModelToSegmentationNode(model, seg, "")
    assert seg.GetSegmentation().GetSourceRepresentationName() == "Closed surface"
    report = DatasetBuilder(scene, segmentations_logic=segmentations).build([CaseSource(seg, volume)], tmp_path)
    assert report.ok, [p.message for p in report.problems]
    segment = report.cases[0].segments[0]
    assert (segment.class_key, segment.mapped_by, segment.used) == ("spleen", "name", True)
    assert 0.8 < segment.voxels * 27.0 / (4 / 3 * np.pi * 20**3) < 1.2  # 3 mm voxels


def test_no_usable_case_writes_no_manifest(tmp_path):
    scene, segmentations = new_scene()
    seg = scene.AddNewNodeByClass("vtkMRMLSegmentationNode", "lonely")
    report = DatasetBuilder(scene, segmentations_logic=segmentations).build([CaseSource(seg)], tmp_path)
    assert not report.ok and report.manifest_path is None
    assert report.problems_of(db.NO_TRAINING_CASES)


# ---------------------------------------------------------------------- presets and progress parsing
def test_presets_map_to_engine_options():
    from mome.training.finetune import FREEZE_PRESETS, UI_PRESETS

    assert QUICK_ADAPT.command == "finetune" and QUICK_ADAPT.freeze == UI_PRESETS["quick adapt"]
    assert FULL_RETRAIN.command == "train" and FULL_RETRAIN.freeze == UI_PRESETS["full retrain"]
    assert all(p.freeze in FREEZE_PRESETS for p in PRESETS.values())
    assert QUICK_ADAPT.steps < FULL_RETRAIN.steps
    assert QUICK_ADAPT.with_overrides(steps=7).steps == 7


def read(line: str, total_steps: int | None = None):
    """A training event from an output line: the shared parser, then its training meaning."""
    return training_event(parse_line(line), total_steps)


def test_parse_progress_lines():
    step = read('{"event": "progress", "stage": "train", "fraction": 0.5, "message": "step 2/4", '
                '"step": 2, "loss": 0.8, "lr": 0.001, "eta_s": 3}', 4)
    assert (step.kind, step.step, step.total_steps, step.loss, step.eta_s) == ("step", 2, 4, 0.8, 3.0)
    val = read('{"event": "progress", "stage": "validate", "fraction": 1, "step": 4, '
               '"val_dice": {"liver": 0.5}, "mean_dice": 0.5}')
    assert (val.kind, val.val_dice, val.mean_dice) == ("validation", {"liver": 0.5}, 0.5)
    done = read('{"event": "done", "package": "/x/p", "validation_dice": {"liver": 0.5}, "steps": 4}')
    assert (done.kind, done.package) == ("done", "/x/p")
    assert read('{"event": "error", "message": "bad data"}').message == "bad data"
    assert read("INFO resumed at step 2").kind == "log"
    assert read("{not json").kind == "log"


# ---------------------------------------------------------------------- training process (real subprocess)
@pytest.fixture(scope="module")
def base_model(tmp_path_factory):
    from stand_ins import random_package
    from mome.package import Preprocessing

    folder = tmp_path_factory.mktemp("base")
    pre = Preprocessing(spacing=(3.0, 3.0, 3.0), fast_spacing=(6.0, 6.0, 6.0), patch_size=(64, 64, 64))
    return random_package("tiny", preprocessing=pre, name="tiny-base", version="1.0.0").save(folder / "tiny-base")


@pytest.fixture(scope="module")
def store(tmp_path_factory, base_model):
    from mome.hub import ModelStore

    store = ModelStore(tmp_path_factory.mktemp("store"))
    store.install(base_model, activate=True)
    return store


@pytest.fixture(scope="module")
def trained(built, base_model, store, tmp_path_factory):
    """A real fine-tuning run, stopped after its first step and resumed to the end, installed as a
    new version (each step is checked as it happens); returns the store logic and the process."""
    logic = ModelStoreLogic(store)
    name, version = logic.new_model_version("tiny-base", "1.0.0")
    assert (name, version) == ("tiny-base-ft", "1.1.0")
    run_dir = tmp_path_factory.mktemp("run")
    steps = 3
    request = TrainingRequest(base_model=str(store.path("tiny-base", "1.0.0")),
                              manifest=str(built["report"].manifest_path), run_dir=str(run_dir),
                              preset=QUICK_ADAPT.with_overrides(steps=steps, lr=1e-3), name=name, version=version,
                              device="cpu", env={"MOME_HOME": str(run_dir / "home"), "OMP_NUM_THREADS": "2"})
    process = TrainingProcess(SubprocessRunner())
    args = process.start(request)
    assert args[1:4] == ["-m", "mome.cli.main", "finetune"] and "--progress" in args and "json" in args
    assert args[args.index("--preset") + 1] == "backbone"

    # Stop once the first step is reported: SIGTERM → checkpoint → exit 130
    events, deadline = [], time.monotonic() + 120
    while time.monotonic() < deadline and not any(e.kind in ("step", "exit") for e in events):
        events += process.poll()
        time.sleep(0.05)
    assert any(e.kind == "step" for e in events), [e.message for e in events][-10:]
    process.stop()
    assert process.state == State.STOPPING
    events += process.wait(120)
    assert process.state == State.STOPPED, process.log[-10:]
    assert process.can_resume()
    from mome.training.checkpoint import load_checkpoint

    stopped_at = load_checkpoint(run_dir)["step"]
    assert 1 <= stopped_at < steps

    args = process.resume()
    assert args[-1] == "--resume"
    events = process.wait(180)
    assert process.state == State.FINISHED, (process.error, process.log[-10:])
    kinds = [e.kind for e in events]
    assert kinds[-1] == "exit" and "done" in kinds
    steps_seen = [e.step for e in events if e.kind == "step"]
    assert steps_seen and steps_seen[0] == stopped_at + 1 and steps_seen[-1] == steps
    assert [s for s, _ in process.history.loss] == list(range(1, steps + 1))  # stop + resume: each step once
    assert process.history.mean_dice  # the held-out case was validated
    assert Path(process.package).is_dir()

    installed = logic.install_trained(process.package)
    return logic, process, installed


def test_training_stop_checkpoint_resume_installs_a_new_version(trained):
    logic, process, installed = trained
    # installed as a new version; the base stays as it was
    assert (installed.name, installed.version) == ("tiny-base-ft", "1.1.0")
    assert installed.base_model == "tiny-base 1.0.0"
    assert {m.spec for m in logic.models()} == {"tiny-base@1.0.0", "tiny-base-ft@1.1.0"}
    assert logic.active().spec == "tiny-base@1.0.0"
    assert logic.new_model_version("tiny-base", "1.0.0") == ("tiny-base-ft", "1.2.0")


def test_model_store_activate_rollback_compare_export(built, trained, tmp_path):
    logic, _, _ = trained
    assert logic.set_active("tiny-base-ft", "1.1.0").active
    assert logic.active().spec == "tiny-base-ft@1.1.0"
    assert logic.rollback().spec == "tiny-base@1.0.0"
    assert logic.active().spec == "tiny-base@1.0.0"
    bases = logic.base_models()  # installed versions first, then the models bundled with MoME
    assert [b.spec for b in bases if b.installed] == ["tiny-base@1.0.0", "tiny-base-ft@1.1.0"]
    assert [b.active for b in bases if b.installed] == [True, False]
    for bundled in (b for b in bases if not b.installed):
        assert (logic.path(bundled.name, bundled.version) / "model.json").is_file()

    # compared by `mome evaluate` in background processes, on the dataset's held-out cases
    comparison = logic.compare([("tiny-base", "1.0.0"), ("tiny-base-ft", "1.1.0")], built["report"].manifest_path,
                               timeout=300, engine_root=REPO)
    held = [c for c in built["report"].cases if c.split == "val"]
    assert comparison.case == f"{len(held)} held-out (val) case{'s' if len(held) != 1 else ''}"
    assert comparison.classes and set(comparison.classes) <= {k for c in held for k in c.classes}
    assert comparison.models == ["tiny-base@1.0.0", "tiny-base-ft@1.1.0"]
    for spec in comparison.models:
        assert all(v is not None and 0.0 <= v <= 1.0 for v in comparison.dice[spec].values())
    assert comparison.dice[comparison.models[0]] != comparison.dice[comparison.models[1]]  # two real evaluations
    rows = comparison.rows()
    assert rows[-1][0] == "mean" and len(rows) == len(comparison.classes) + 1
    # Each Dice with the cases behind it, then what each package records about the class: neither
    # random package carries held-out figures; the fine-tuned one has its validation Dice from training.
    assert comparison.headers() == ["Class", "tiny-base@1.0.0: Dice (n)", "tiny-base-ft@1.1.0: Dice (n)",
                                    "tiny-base@1.0.0: recorded", "tiny-base-ft@1.1.0: recorded"]
    for row, key in zip(rows, comparison.classes):
        n = comparison.cases["tiny-base@1.0.0"][key]
        assert 1 <= n <= len(held) and row[1] == f"{comparison.dice['tiny-base@1.0.0'][key]:.3f} (n={n})"
        assert row[3] == "not validated"
        assert row[4].startswith("not validated") and (comparison.recorded["tiny-base-ft@1.1.0"][key].training_dice
                                                       is None or " when trained" in row[4])
    assert any(r.training_dice is not None for r in comparison.recorded["tiny-base-ft@1.1.0"].values())
    tips = comparison.tooltips()
    assert "no accuracy figure for version 1.0.0" in tips[0][3]
    assert len(tips) == len(rows) and all(len(t) == len(r) for t, r in zip(tips, rows))

    zip_path = logic.export_zip("tiny-base-ft", "1.1.0", tmp_path / "ft.zip")
    from mome.hub import ModelStore

    other = ModelStoreLogic(ModelStore(tmp_path / "other-store"))
    imported = other.import_zip(zip_path)
    assert imported.spec == "tiny-base-ft@1.1.0"
    with pytest.raises(FileExistsError):  # never overwrite an installed version with another package
        from stand_ins import random_package

        different = random_package("tiny", name="tiny-base-ft", version="1.1.0", seed=3).save(tmp_path / "diff")
        other.install_trained(different)


# ---------------------------------------------------------------------- commands, state machine, plot, packaging
class ReplayRunner:
    """A ProcessRunner whose process has already ended: it replays recorded output and an exit code."""

    def __init__(self, lines: list[str], code: int):
        self.lines, self.code, self.args = list(lines), code, None
        self.pid = 0

    def start(self, args, env=None, cwd=None):
        self.args = args
        return self

    def read_lines(self):
        lines, self.lines = self.lines, []
        return lines

    def poll(self):
        return self.code

    def wait(self, timeout=None):
        return self.code

    def terminate(self):
        pass

    def kill_tree(self, grace_s=0.0):
        pass


def test_commands_are_accepted_by_the_engine_cli(base_model, tmp_path):
    """Both presets' command lines parse with the real `mome` parser; full retrain writes a config
    the engine loads, starting from the base package with nothing frozen."""
    from mome.cli.main import build_parser
    from mome.training.config import TrainConfig

    manifest = tmp_path / "dataset.json"
    for preset in (QUICK_ADAPT, FULL_RETRAIN):
        request = TrainingRequest(base_model=str(base_model), manifest=str(manifest), run_dir=str(tmp_path / preset.key),
                                  preset=preset.with_overrides(steps=5), name="tiny-base-ft", version="1.1.0",
                                  device="cpu", classes=["liver", "spleen"])
        for resume in (False, True):
            args = TrainingProcess(ReplayRunner([], 0)).command(request, resume=resume)
            parsed = build_parser().parse_args(args[3:])
            assert parsed.command == preset.command and parsed.progress == "json" and parsed.resume == resume
            assert parsed.output == request.run_dir and parsed.device == "cpu"
        if preset is QUICK_ADAPT:
            assert (parsed.model, parsed.preset, parsed.steps, parsed.name, parsed.version, parsed.classes) == (
                str(base_model), "backbone", 5, "tiny-base-ft", "1.1.0", "liver,spleen")
        else:
            cfg = TrainConfig.load(parsed.config)
            assert (cfg.base_model, cfg.freeze, cfg.optim.steps, cfg.name, cfg.version) == (
                str(base_model), "none", 5, "tiny-base-ft", "1.1.0")
            assert cfg.data.patch_size == (64, 64, 64) and cfg.data.manifest == str(manifest.resolve())


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX process groups")
def test_stop_reaches_the_trainer_behind_a_launcher(tmp_path):
    """In Slicer the command starts with PythonSlicer, a launcher that runs Python as its child: Stop
    must reach that child (which saves a checkpoint), and the run ends only when the child has."""
    child = tmp_path / "child.py"
    child.write_text(
        "import signal, sys, time\n"
        "def stop(*_):\n"
        "    time.sleep(0.3)  # saving a checkpoint\n"
        "    print('checkpoint saved', flush=True)\n"
        "    sys.exit(130)\n"
        "signal.signal(signal.SIGTERM, stop)\n"
        "print('started', flush=True)\n"
        "time.sleep(60)\n")
    launcher = f"import subprocess, sys; sys.exit(subprocess.call([sys.executable, {str(child)!r}]))"
    lines = []
    handle = SubprocessRunner().start([sys.executable, "-c", launcher])
    deadline = time.monotonic() + 20
    while "started" not in lines and time.monotonic() < deadline:
        lines += handle.read_lines()
        time.sleep(0.02)
    handle.terminate()
    code = handle.wait(20)
    lines += handle.read_lines()
    assert lines == ["started", "checkpoint saved"]  # the trainer got the signal and finished saving
    assert code in (130, -signal.SIGTERM)  # this launcher has no handler of its own: the signal ends it


def test_new_versions_never_reuse_an_installed_name_and_version():
    class Installed:
        def __init__(self, spec):
            self.name, self.version = spec.split("@")

    class Store:
        def installed(self):
            return [Installed(s) for s in ("base@1.0.0", "base-ft@1.1.0", "base-ft@1.2.0")]

    logic = ModelStoreLogic(Store())
    assert logic.new_model_version("base", "1.0.0") == ("base-ft", "1.3.0")
    assert logic.new_model_version("base-ft", "1.2.0") == ("base-ft", "1.3.0")  # no "-ft-ft"
    assert logic.new_model_version("base", "1.0.0", name="base") == ("base", "1.1.0")  # never the base's own version
    assert logic.new_model_version("other", "2.4.1", name="mine") == ("mine", "2.5.0")


def test_failed_run_reports_the_engine_error(tmp_path):
    lines = ["INFO loading", '{"event": "error", "message": "the training data has 1 problem(s)", "details": "x"}']
    process = TrainingProcess(ReplayRunner(lines, 2))
    request = TrainingRequest("base", "m.json", str(tmp_path), QUICK_ADAPT, "n-ft", "1.1.0")
    process.start(request)
    events = process.poll()
    assert [e.kind for e in events] == ["log", "error", "exit"]
    assert process.state == State.FAILED and events[-1].state == State.FAILED
    assert "1 problem" in process.error and not process.can_resume()
    with pytest.raises(RuntimeError):
        process.resume()


def test_training_plot_tables(tmp_path):
    from MoMETrainingLib.training_plot import TrainingPlot
    from MoMETrainingLib.training_process import History

    scene, _ = new_scene()
    plot = TrainingPlot(scene)
    history = History()
    for line in ['{"event": "progress", "stage": "train", "step": 1, "loss": 1.5}',
                 '{"event": "progress", "stage": "train", "step": 2, "loss": 1.2}',
                 '{"event": "progress", "stage": "validate", "step": 2, "val_dice": {"liver": 0.4}, "mean_dice": 0.4}',
                 '{"event": "progress", "stage": "train", "step": 2, "loss": 1.1}']:  # replayed after a resume
        history.add(read(line))
    plot.update(history)
    table = plot.loss_table.GetTable()
    assert [(table.GetValue(r, 0).ToDouble(), table.GetValue(r, 1).ToDouble()) for r in range(table.GetNumberOfRows())] \
        == [(1.0, 1.5), (2.0, 1.1)]
    assert plot.dice_table.GetTable().GetNumberOfRows() == 1
    assert plot.chart.GetNumberOfPlotSeriesNodes() == 2
    plot.remove()
    assert scene.GetFirstNodeByClass("vtkMRMLPlotChartNode") is None


def test_module_files_are_listed_and_ui_names_exist():
    """CMake installs only what it lists; the widget may only use widget names the .ui defines."""
    import re
    import xml.etree.ElementTree as ET

    module = REPO / "MoMETraining"
    cmake = (module / "CMakeLists.txt").read_text().replace("${MODULE_NAME}", "MoMETraining")
    listed = set(re.findall(r"[\w/]+\.(?:py|png|ui)", cmake))
    files = {p.relative_to(module).as_posix() for p in module.rglob("*") if p.suffix in (".py", ".png", ".ui")
             and "__pycache__" not in p.parts}
    assert files == listed
    ui_names = {w.get("name") for w in ET.parse(module / "Resources/UI/MoMETraining.ui").iter("widget")}
    used = set(re.findall(r"self\.ui\.(\w+)", (module / "MoMETrainingLib/widget.py").read_text()))
    assert used <= ui_names, used - ui_names
    lib = (module / "MoMETrainingLib").glob("*.py")
    for path in lib:  # logic stays Qt-free and scene-agnostic (only the widget may use Qt / app globals)
        if path.name == "widget.py":
            continue
        text = path.read_text()
        assert not re.search(r"^\s*(import qt|from qt|import ctk)", text, re.M), path.name
        assert not re.search(r"(?<!`)slicer\.(mrmlScene|modules|app)\b", text), path.name  # ``...`` in docs is fine


@pytest.mark.slow
def test_the_scripting_api_trains_and_installs_a_new_version(example, base_model, tmp_path):
    """``MoMETrainingLogic.train``: scene pairs in, an installed model version out (blocking)."""
    from mome.hub import ModelStore
    from MoMETrainingLib.logic import MoMETrainingLogic

    store = ModelStore(tmp_path / "store")
    store.install(base_model, activate=True)
    scene, segmentations = new_scene()
    pairs = []
    for key, (path, labels) in example.items():
        volume = load_volume(scene, path, key)
        pairs.append((volume, add_segmentation(scene, volume, labels, [(LIVER, "liver", None), (SPLEEN, "spleen", None)],
                                               f"{key} labels")))
    logic = MoMETrainingLogic(scene, segmentations, ModelStoreLogic(store), python=sys.executable, engine_root=REPO,
                              environment={**os.environ, "MOME_HOME": str(tmp_path / "home"), "OMP_NUM_THREADS": "2"})
    events = []
    model = logic.train(pairs, base_model="tiny-base@1.0.0", steps=2, device="cpu", work_dir=tmp_path / "work",
                        timeout=300, on_event=events.append)
    assert (model.name, model.version) == ("tiny-base-ft", "1.1.0")
    assert {m.spec for m in store.installed()} == {"tiny-base@1.0.0", "tiny-base-ft@1.1.0"}
    assert store.active().spec == "tiny-base@1.0.0"  # not activated unless asked
    assert [e.kind for e in events if e.kind == "step"] and events[-1].kind == "exit"
    with pytest.raises(Exception, match="no usable training case"):
        logic.train([], base_model="tiny-base@1.0.0", work_dir=tmp_path / "empty", timeout=60)
