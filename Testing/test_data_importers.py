"""Importers: dataset folders in public layouts (built from a crop of the real CT) become manifests that
load, pass the manifest check and prepare; unmapped labels are listed, never dropped."""

from __future__ import annotations

import json

import numpy as np
import pytest
import yaml

from data_fixtures import KIDNEY_LEFT, KIDNEY_RIGHT, LIVER, SPLEEN, RealCrop, write_json
from mome.cli.main import main
from mome.data import MappingError, import_dataset, parse_overrides, write_manifest
from mome.training.data import prepare_case, validate_manifest
from mome.training.manifest import load_manifest
from mome.vocabulary import load_vocabulary


@pytest.fixture(scope="module")
def crop(shared_data):
    return RealCrop(shared_data)


def test_msd_names_lesions_by_their_task_and_skips_what_has_no_labels(crop, tmp_path):
    task = tmp_path / "Task03_Liver"
    write_json(task / "dataset.json", {"name": "Liver", "modality": {"0": "CT"},
                                       "labels": {"0": "background", "1": "liver", "2": "cancer"}})
    for i in range(4):
        crop.write_image(task / "imagesTr" / f"liver_{i}.nii.gz")
        crop.liver_with_tumour(task / "labelsTr" / f"liver_{i}.nii.gz")
    (task / "imagesTr" / "._liver_0.nii.gz").write_bytes(b"macOS resource fork")  # as in the decathlon tars
    crop.write_image(task / "imagesTs" / "liver_9.nii.gz")

    dataset = import_dataset("msd", task, val_fraction=0.25)
    assert dataset.label_map == {1: "liver", 2: "liver_tumor"}
    assert [c["split"] for c in dataset.cases].count("val") == 1 and len(dataset.cases) == 4
    assert any("imagesTs/ has no labelsTs/" in n for n in dataset.notes)

    path = write_manifest([dataset], tmp_path / "m.yaml")
    manifest = load_manifest(path)
    assert validate_manifest(manifest, load_vocabulary()) == []
    prepared = prepare_case(manifest.cases()[0], ["liver", "liver_tumor", "spleen"], (3, 3, 3), (-175, 250),
                            parents={"liver_tumor": ["liver"]})
    assert prepared.labelled.tolist() == [True, True, False]
    assert prepared.target[0].sum() > prepared.target[1].sum() > 0


def test_msd_refuses_images_that_are_not_ct(tmp_path):
    write_json(tmp_path / "dataset.json", {"name": "Prostate", "modality": {"0": "T2", "1": "ADC"},
                                           "labels": {"0": "background", "1": "PZ"}})
    with pytest.raises(ValueError, match="2 channels.*single-channel CT"):
        import_dataset("msd", tmp_path)


def test_nnunet_lists_what_it_cannot_map_and_takes_user_mappings(crop, tmp_path):
    folder = tmp_path / "Dataset064_KiTSlike"
    write_json(folder / "dataset.json", {
        "channel_names": {"0": "CT"}, "file_ending": ".nii.gz", "numTraining": 2,
        "labels": {"background": 0, "kidney": 1, "tumor": 2, "cyst": 3, "kidney and masses": [1, 2, 3]}})
    for cid in ("case_00000", "case_00001"):
        crop.write_image(folder / "imagesTr" / f"{cid}_0000.nii.gz")
        crop.write_labels(folder / "labelsTr" / f"{cid}.nii.gz", {KIDNEY_RIGHT: 1, KIDNEY_LEFT: 1, LIVER: 2})

    dataset = import_dataset("nnunet", folder, val_fraction=0.0)
    assert dataset.label_map == {1: None, 2: "kidney_tumor", 3: "kidney_cyst"}
    assert dataset.unmapped == ["1 (kidney)"]
    assert any("region labels ['kidney and masses']" in n for n in dataset.notes)
    assert {c["id"] for c in dataset.cases} == {"case_00000", "case_00001"}
    manifest = load_manifest(write_manifest([dataset], tmp_path / "m.yaml"))
    assert manifest.datasets[0].unmapped_labels() == ["1 (kidney)"]  # kept in the manifest for `data check`

    mapped = import_dataset("nnunet", folder, overrides=parse_overrides(["kidney=kidney_right"]))
    assert mapped.label_map[1] == "kidney_right" and mapped.unmapped == []
    with pytest.raises(MappingError, match="not a vocabulary key"):
        import_dataset("nnunet", folder, overrides=parse_overrides(["kidney=kidny"]))
    with pytest.raises(MappingError, match="does not have; its labels are"):
        import_dataset("nnunet", folder, overrides=parse_overrides(["lungs=null"]))


def test_totalsegmentator_masks_splits_and_unmapped_structures(crop, tmp_path):
    for sid in ("s0001", "s0002", "s0003"):
        crop.write_image(tmp_path / sid / "ct.nii.gz")
        for name, value in (("liver", LIVER), ("kidney_left", KIDNEY_LEFT), ("spleen", SPLEEN),
                            ("lung_vessels", 0)):
            crop.write_mask(tmp_path / sid / "segmentations" / f"{name}.nii.gz", value)
    (tmp_path / "meta.csv").write_text("image_id;age;split\ns0001;60;train\ns0002;70;test\ns0003;55;val\n")

    dataset = import_dataset("totalsegmentator", tmp_path)
    assert dataset.unmapped_masks == ["lung_vessels"]
    assert {c["id"]: c["split"] for c in dataset.cases} == {"s0001": "train", "s0002": "test", "s0003": "val"}
    assert set(dataset.cases[0]["masks"]) == {"liver", "kidney_left", "spleen"}
    manifest = load_manifest(write_manifest([dataset], tmp_path / "out" / "m.yaml"))
    assert validate_manifest(manifest, load_vocabulary()) == []
    assert manifest.class_case_counts("train") == {"liver": 1, "kidney_left": 1, "spleen": 1}


def test_presets_know_their_layouts_and_splits(crop, tmp_path):
    # KiTS: case folders; a case without segmentation (the test set) is skipped with a note.
    kits = tmp_path / "kits23" / "dataset"
    crop.write_image(kits / "case_00000" / "imaging.nii.gz")
    crop.write_labels(kits / "case_00000" / "segmentation.nii.gz", {KIDNEY_RIGHT: 1, KIDNEY_LEFT: 1, LIVER: 2})
    crop.write_image(kits / "case_00300" / "imaging.nii.gz")
    imported = import_dataset("kits", kits.parent)
    assert [c["id"] for c in imported.cases] == ["00000"]
    assert imported.label_map == {1: None, 2: "kidney_tumor", 3: "kidney_cyst"}
    assert any("have no label file" in n for n in imported.notes)

    # CT-ORG: cases 0-20 are its test split.
    ctorg = tmp_path / "ctorg"
    for n in (3, 25, 26):
        crop.write_image(ctorg / "OrganSegmentations" / f"volume-{n}.nii.gz")
        crop.write_labels(ctorg / "OrganSegmentations" / f"labels-{n}.nii.gz", {LIVER: 1, KIDNEY_LEFT: 4})
    imported = import_dataset("ct-org", ctorg, val_fraction=0.5)
    assert {c["id"]: c["split"] for c in imported.cases}["3"] == "test"
    assert sorted(c["split"] for c in imported.cases if c["id"] != "3") == ["train", "val"]

    # BTCV: img/ and label/ folders side by side.
    btcv = tmp_path / "Abdomen" / "RawData" / "Training"
    crop.write_image(btcv / "img" / "img0001.nii.gz")
    crop.write_labels(btcv / "label" / "label0001.nii.gz", {SPLEEN: 1, LIVER: 6})
    imported = import_dataset("btcv", tmp_path / "Abdomen", val_fraction=0.0)
    assert imported.cases[0]["labels"].endswith("label/label0001.nii.gz") and imported.label_map[6] == "liver"

    # AMOS22: the decathlon layout with a val folder; MRI cases (numbers above 500) are left out.
    amos = tmp_path / "amos22"
    for split, cid in (("Tr", "amos_0001"), ("Tr", "amos_0507"), ("Va", "amos_0008")):
        crop.write_image(amos / f"images{split}" / f"{cid}.nii.gz")
        crop.write_labels(amos / f"labels{split}" / f"{cid}.nii.gz", {SPLEEN: 1, LIVER: 6})
    imported = import_dataset("amos22", amos)
    assert {c["id"]: c["split"] for c in imported.cases} == {"amos_0001": "train", "amos_0008": "val"}
    assert imported.unmapped == ["15 (prostate/uterus)"]

    with pytest.raises(ValueError, match="DICOM series with PNG masks"):
        import_dataset("chaos", tmp_path)


def test_cli_import_append_and_check_report_everything_at_once(crop, tmp_path, capsys):
    kits = tmp_path / "kits"
    for cid in ("case_00000", "case_00001"):
        crop.write_image(kits / cid / "imaging.nii.gz")
        crop.write_labels(kits / cid / "segmentation.nii.gz", {KIDNEY_RIGHT: 1, KIDNEY_LEFT: 1, LIVER: 2})
    task = tmp_path / "Task09_Spleen"
    write_json(task / "dataset.json", {"name": "Spleen", "modality": {"0": "CT"},
                                       "labels": {"0": "background", "1": "spleen"}})
    crop.write_image(task / "imagesTr" / "spleen_1.nii.gz")
    crop.write_labels(task / "labelsTr" / "spleen_1.nii.gz", {SPLEEN: 1, LIVER: 7})  # 7: not in dataset.json
    out = tmp_path / "manifests" / "all.yaml"

    assert main(["data", "import", "kits", str(kits), "-o", str(out), "--val-fraction", "0.5"]) == 0
    printed = capsys.readouterr().out
    assert "mapped to no class" in printed and "1 (kidney)" in printed
    assert main(["data", "import", "msd", str(task), "-o", str(out)]) == 2  # exists, no --append
    assert "--append" in capsys.readouterr().err
    assert main(["data", "import", "msd", str(task), "-o", str(out), "--append"]) == 0
    data = yaml.safe_load(out.read_text())
    assert [d["name"] for d in data["datasets"]] == ["kits", "Spleen"]
    data["datasets"][1]["weight"] = 3.0
    out.write_text(yaml.safe_dump(data))
    capsys.readouterr()

    assert main(["data", "check", str(out), "--json"]) == 1  # one problem: value 7 is unmapped
    report = json.loads(capsys.readouterr().out)
    assert report["class_case_counts"]["kidney_tumor"] == {"train": 1, "val": 1, "test": 0}
    assert report["class_case_counts"]["spleen"] == {"train": 1, "val": 0, "test": 0}
    assert [d["sampling_probability"] for d in report["datasets"]] == [0.25, 0.75]
    assert [d["unmapped"] for d in report["datasets"]] == [["1 (kidney)"], []]
    assert len(report["problems"]) == 1 and "label values [7]" in report["problems"][0]
    assert main(["data", "check", str(out)]) == 1
    text = capsys.readouterr().out
    assert "cases per class" in text and "unmapped labels" in text and "problems (1)" in text


def test_paths_in_the_manifest_are_relative_to_it(crop, tmp_path):
    task = tmp_path / "data" / "Task09_Spleen"
    write_json(task / "dataset.json", {"name": "Spleen", "modality": {"0": "CT"}, "labels": {"1": "spleen"}})
    crop.write_image(task / "imagesTr" / "s.nii.gz")
    crop.write_labels(task / "labelsTr" / "s.nii.gz", {SPLEEN: 1})
    path = write_manifest([import_dataset("msd", task)], tmp_path / "m" / "x.yaml")
    case = yaml.safe_load(path.read_text())["datasets"][0]["cases"][0]
    assert case["image"] == "../data/Task09_Spleen/imagesTr/s.nii.gz"
    assert np.isclose(load_manifest(path).datasets[0].weight, 1.0)
