"""Dataset manifests: every problem is reported before training starts, in one clear report."""

from __future__ import annotations

import json

import numpy as np
import pytest
import SimpleITK as sitk

from mome.training.data import prepare_case, validate_manifest
from mome.training.manifest import ManifestError, load_manifest
from mome.vocabulary import load_vocabulary
from training_fixtures import phantom_manifest, write_phantom_case


def _manifest(tmp_path, datasets):
    path = tmp_path / "m.json"
    path.write_text(json.dumps({"name": "t", "datasets": datasets}))
    return path


def test_valid_manifest_has_no_problems_and_partial_labels(tmp_path):
    manifest = load_manifest(phantom_manifest(tmp_path))
    assert validate_manifest(manifest, load_vocabulary()) == []
    case = prepare_case(manifest.cases("train")[0], ["liver", "spleen", "kidney_left"], (3, 3, 3), (-175, 250))
    assert case.labelled.tolist() == [True, True, False]  # kidney is unknown here, not background
    assert case.target[0].sum() > 0 and case.target[1].sum() > 0 and case.target[2].sum() == 0
    assert 0.0 <= case.image.min() and case.image.max() <= 1.0


def test_every_problem_is_reported_at_once(tmp_path):
    p = write_phantom_case(tmp_path, "a")
    shifted = sitk.ReadImage(str(p["labels"]))
    shifted.SetSpacing((2.0, 2.0, 2.0))
    sitk.WriteImage(shifted, str(tmp_path / "shifted.nii.gz"))
    path = _manifest(tmp_path, [
        {"name": "d1", "label_map": {"1": "liver"}, "cases": [  # value 2 is present but unmapped
            {"id": "ok-but-unmapped", "image": p["image"].name, "labels": p["labels"].name},
            {"id": "missing", "image": "nope.nii.gz", "labels": p["labels"].name},
            {"id": "mismatch", "image": p["image"].name, "labels": "shifted.nii.gz"},
        ]},
        {"name": "d2", "cases": [{"id": "unknown-class", "image": p["image"].name,
                                  "masks": {"livr": p["labels"].name}, "split": "val"}]},
    ])
    problems = validate_manifest(load_manifest(path), load_vocabulary())
    text = "\n".join(problems)
    assert "d1/ok-but-unmapped: label values [2] are not in dataset d1's label_map" in text
    assert "d1/missing: image file" in text and "does not exist" in text
    assert "d1/mismatch: labels geometry" in text and "resample the labels onto the image grid" in text
    assert "d2/unknown-class: class 'livr' is not in the vocabulary (closest: liver" in text
    assert len(problems) == 6  # the unmapped value is reported for each of the three d1 cases


def test_structural_errors_raise_a_single_report(tmp_path):
    path = _manifest(tmp_path, [
        {"name": "d", "cases": [{"id": "x", "image": "a.nii.gz", "split": "testing", "roi": {"z": [5, 1]}},
                                {"id": "y", "image": "a.nii.gz", "labels": "l.nii.gz"}]},
    ])
    with pytest.raises(ManifestError) as err:
        load_manifest(path)
    msg = str(err.value)
    assert "nothing was trained" in msg
    assert "split 'testing' is not one of" in msg
    assert "roi must map" in msg
    assert "d/x: give 'labels'" in msg
    assert "has 'labels' but dataset d has no label_map" in msg


def test_no_training_case_is_a_problem(tmp_path):
    p = write_phantom_case(tmp_path, "a")
    path = _manifest(tmp_path, [{"name": "d", "label_map": {"1": "liver", "2": "spleen"}, "cases": [
        {"id": "v", "image": p["image"].name, "labels": p["labels"].name, "split": "val"}]}])
    assert "no case has split 'train'" in validate_manifest(load_manifest(path), load_vocabulary())


def test_roi_keeps_physical_position(tmp_path):
    p = write_phantom_case(tmp_path, "a")
    path = _manifest(tmp_path, [{"name": "d", "label_map": {"1": "liver", "2": "spleen"}, "cases": [
        {"id": "top", "image": p["image"].name, "labels": p["labels"].name, "roi": {"z": [24, 48]}}]}])
    case = load_manifest(path).cases()[0]
    full = prepare_case(case.__class__(**{**case.__dict__, "roi": {}}), ["liver"], (3, 3, 3), (-175, 250))
    top = prepare_case(case, ["liver"], (3, 3, 3), (-175, 250))
    assert top.image.shape[-1] == 24  # arrays are (x, y, z)
    np.testing.assert_array_equal(top.target[0], full.target[0][..., 24:])


def test_tumour_voxels_also_count_as_organ(tmp_path):
    p = write_phantom_case(tmp_path, "a")
    # Reinterpret the phantom: value 1 = liver, value 2 (a separate blob) = liver tumour.
    path = _manifest(tmp_path, [{"name": "d", "label_map": {"1": "liver", "2": "liver_tumor"}, "cases": [
        {"id": "c", "image": p["image"].name, "labels": p["labels"].name}]}])
    case = load_manifest(path).cases()[0]
    prepared = prepare_case(case, ["liver", "liver_tumor"], (3, 3, 3), (-175, 250),
                            parents={"liver_tumor": ["liver"]})
    tumour, liver = prepared.target[1].astype(bool), prepared.target[0].astype(bool)
    assert tumour.any() and (liver[tumour]).all()


def test_seg_nrrd_cases_and_folders_know_their_classes(tmp_path):
    """A case may be one Slicer .seg.nrrd: its classes (for counts, the class list of a run and the
    split report) come from the segments' terminology, else their names; unmatched segments are not
    classes. The same holds for a seg_nrrd_folder dataset."""
    from mome.io import write_seg_nrrd
    from mome.vocabulary import SegmentDescriptor
    from mome.vocabulary.terminology import slicer_terminology_entry

    vocab = load_vocabulary()
    p = write_phantom_case(tmp_path, "s")
    image = sitk.ReadImage(str(p["image"]))
    labels = sitk.GetArrayFromImage(sitk.ReadImage(str(p["labels"])))
    spleen = vocab.get("spleen")
    segments = [SegmentDescriptor("s1", "Segment_1", (1, 2, 3), spleen.category, spleen.type),
                SegmentDescriptor("s2", "Spleen", spleen.color, spleen.category, spleen.type),
                SegmentDescriptor("s3", "my note", (1, 2, 3), spleen.category, spleen.type)]
    # s1 is liver by its terminology; s2 and s3 carry an empty one, so their names decide (s3: nothing)
    entries = [slicer_terminology_entry(vocab.get("liver")), "", ""]
    write_seg_nrrd(tmp_path / "s.seg.nrrd", [labels == 1, labels == 2, labels == 2], image, segments, "test",
                   terminology_entries=entries)
    path = _manifest(tmp_path, [{"name": "slicer", "cases": [
        {"id": "s", "image": p["image"].name, "seg_nrrd": "s.seg.nrrd", "split": "val"}]}])
    manifest = load_manifest(path)
    case = manifest.cases()[0]
    assert (case.split, case.seg_nrrd.name) == ("val", "s.seg.nrrd")
    assert case.classes == ["liver", "spleen"]
    assert manifest.class_case_counts() == {"liver": 1, "spleen": 1}

    folder = tmp_path / "folder"
    folder.mkdir()
    for name in ("s.seg.nrrd", p["image"].name):
        (folder / (name if name.endswith(".seg.nrrd") else "s.nii.gz")).write_bytes((tmp_path / name).read_bytes())
    folder_manifest = load_manifest(_manifest(tmp_path, [{"name": "f", "seg_nrrd_folder": "folder"}]))
    assert folder_manifest.classes == ["liver", "spleen"]

    with pytest.raises(ManifestError, match="'labels'.*'masks' or 'seg_nrrd'"):
        load_manifest(_manifest(tmp_path, [{"name": "x", "cases": [{"id": "n", "image": p["image"].name}]}]))


def test_include_combines_per_dataset_manifests_with_weights(tmp_path):
    """How the paper recipe combines the importers' per-dataset manifests: paths stay relative to
    each included file, the including entry's weight wins, and every problem is still listed."""
    sub = phantom_manifest(tmp_path / "data")  # data/manifest.json, dataset "phantom", weight 1
    other = tmp_path / "data" / "other.json"
    case = {"id": "c", "image": "case0_image.nii.gz", "labels": "case0_labels.nii.gz"}
    other.write_text(json.dumps({"name": "o", "datasets": [
        {"name": "other", "weight": 3.0, "label_map": {"1": "liver", "2": None}, "cases": [case]}]}))
    combined = _manifest(tmp_path, [{"include": "data/manifest.json", "weight": 2.5}, {"include": "data/other.json"}])
    manifest = load_manifest(combined)
    assert manifest.dataset_weights == {"phantom": 2.5, "other": 3.0}
    assert manifest.cases()[0].image == sub.parent / "case0_image.nii.gz"
    assert validate_manifest(manifest, load_vocabulary()) == []

    broken = _manifest(tmp_path, [{"include": "data/missing.yaml"}, {"include": "m.json"},
                                  {"include": "data/other.json", "weight": 0, "name": "x"}])
    with pytest.raises(ManifestError) as err:
        load_manifest(broken)
    text = str(err.value)
    assert "missing.yaml does not exist (write it with `mome data import`)" in text
    assert "includes itself" in text
    assert "unknown keys ['name']" in text and "weight must be a positive number" in text
