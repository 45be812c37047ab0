"""Stress test: ``mome segment`` on a folder of deliberately broken inputs.

For each: a non-zero exit, one line saying why, no traceback, no output file, and no model loaded
(every check runs before the weights are read, so this stays fast).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
from PIL import Image

from mome.cli.main import main
from mome.package.package import ModelPackage


def _save(array: np.ndarray, path: Path, like: sitk.Image | None = None) -> None:
    image = sitk.GetImageFromArray(array)
    if like is not None:
        image.CopyInformation(like)
    sitk.WriteImage(image, str(path))


def make_broken_inputs(ct_path: Path, folder: Path) -> dict[str, Path]:
    """name → input file or folder that must be refused."""
    folder.mkdir()
    ct = sitk.ReadImage(str(ct_path))
    hu = sitk.GetArrayFromImage(ct).astype(np.int16)
    data = ct_path.read_bytes()
    made: dict[str, Path] = {}

    def put(name: str, array: np.ndarray) -> None:
        made[name] = folder / name
        _save(array, made[name], ct)

    (folder / "truncated.nii.gz").write_bytes(data[:1000])  # the case: a cut-off download
    made["truncated.nii.gz"] = folder / "truncated.nii.gz"
    sitk.WriteImage(ct, str(folder / "whole.nii"))
    raw = (folder / "whole.nii").read_bytes()
    (folder / "whole.nii").unlink()
    (folder / "half.nii").write_bytes(raw[: len(raw) // 2])
    made["half.nii"] = folder / "half.nii"
    sitk.WriteImage(ct, str(folder / "whole.nrrd"), useCompression=True)
    nrrd = (folder / "whole.nrrd").read_bytes()
    (folder / "whole.nrrd").unlink()
    (folder / "truncated.nrrd").write_bytes(nrrd[: len(nrrd) * 2 // 3])
    made["truncated.nrrd"] = folder / "truncated.nrrd"
    (folder / "empty.nii.gz").write_bytes(b"")
    made["empty.nii.gz"] = folder / "empty.nii.gz"
    (folder / "text.nii.gz").write_text("not an image\n")
    made["text.nii.gz"] = folder / "text.nii.gz"

    put("zeros.nii.gz", np.zeros_like(hu))
    put("constant.nrrd", np.full_like(hu, 40))
    zero_filled = hu.copy()
    zero_filled[: hu.shape[0] * 2 // 3] = 0
    put("zero_filled.nii.gz", zero_filled)
    put("rescaled_0_1.mha", ((hu - hu.min()) / float(hu.max() - hu.min())).astype(np.float32))
    put("mri_like_0_1000.nii.gz", (np.random.default_rng(0).random(hu.shape) * 1000).astype(np.int16))
    put("stored_values_hu_plus_1024.nii.gz", (hu.astype(np.int32) + 1024).astype(np.int16))
    put("nan.mha", np.where(hu > 500, np.nan, hu).astype(np.float32))

    Image.fromarray(np.zeros((64, 64, 3), np.uint8)).save(folder / "screenshot.png")
    made["screenshot.png"] = folder / "screenshot.png"
    _save(hu[5], folder / "single_slice.nii.gz")
    made["single_slice.nii.gz"] = folder / "single_slice.nii.gz"
    (folder / "no_dicom_here").mkdir()
    (folder / "no_dicom_here" / "notes.txt").write_text("hello")
    made["no_dicom_here"] = folder / "no_dicom_here"
    return made


@pytest.fixture(scope="module")
def broken(shared_data: Path, tmp_path_factory) -> dict[str, Path]:
    return make_broken_inputs(shared_data / "totalseg_example" / "example_ct_sm.nii.gz",
                              tmp_path_factory.mktemp("broken") / "inputs")


@pytest.fixture
def no_model_loading(monkeypatch):
    """Loading the weights would mean a check came too late: make it fail the test loudly."""
    def refuse(cls, path):
        raise AssertionError(f"the model was loaded for a broken input ({path})")

    monkeypatch.setattr(ModelPackage, "load", classmethod(refuse))


def test_each_broken_input_is_refused_in_one_line(broken, tmp_path, capfd, no_model_loading):
    assert len(broken) >= 15
    failures = []
    for name, path in broken.items():
        out = tmp_path / name.replace(".", "_")
        code = main(["segment", str(path), "--prompts", "liver", "--output", str(out / "seg.seg.nrrd"),
                     "--labelmap", str(out / "labels.nrrd"), "--stats", str(out / "stats.csv"),
                     "--progress", "none"])
        captured = capfd.readouterr()
        ours = [line for line in captured.err.splitlines() if line.startswith("mome segment: error:")]
        if code == 0 or len(ours) != 1 or "Traceback" in captured.err + captured.out or out.exists():
            failures.append(f"{name}: exit {code}, stderr {captured.err[-400:]!r}")
        elif ours[0].strip() == "mome segment: error:":
            failures.append(f"{name}: an empty reason")
    assert not failures, "\n".join(failures)


def test_reasons_say_what_is_wrong(broken, tmp_path, capfd, no_model_loading):
    expected = {"truncated.nii.gz": "truncated", "half.nii": "truncated", "zeros.nii.gz": "blank",
                "zero_filled.nii.gz": "are exactly 0", "rescaled_0_1.mha": "normalised",
                "stored_values_hu_plus_1024.nii.gz": "HU + 1024", "nan.mha": "NaN",
                "truncated.nrrd": "complete"}
    for name, words in expected.items():
        assert main(["segment", str(broken[name]), "--prompts", "liver", "--output",
                     str(tmp_path / "x.seg.nrrd"), "--progress", "none"]) == 2
        assert words in capfd.readouterr().err, name


def test_json_error_event_carries_the_structured_reason(broken, tmp_path, capfd, no_model_loading):
    assert main(["segment", str(broken["rescaled_0_1.mha"]), "--prompts", "liver", "--output",
                 str(tmp_path / "x.seg.nrrd"), "--progress", "json"]) == 2
    event = json.loads(capfd.readouterr().out.strip().splitlines()[-1])
    assert event["event"] == "error"
    check = event["input_check"]
    assert check["code"] == "no_air" and check["overridable"] and check["override_flag"] == "--skip-input-check"
    assert 0 <= check["measurements"]["air_fraction"] < 0.01

    assert main(["segment", str(broken["truncated.nii.gz"]), "--prompts", "liver", "--output",
                 str(tmp_path / "x.seg.nrrd"), "--progress", "json"]) == 2
    check = json.loads(capfd.readouterr().out.strip().splitlines()[-1])["input_check"]
    assert check["code"] == "truncated" and not check["overridable"] and check["override_flag"] is None


def test_the_expert_override_passes_the_value_check_but_never_a_damaged_file(broken, tmp_path, capfd,
                                                                            no_model_loading):
    # With --skip-input-check the normalised volume gets as far as loading the model (refused here).
    with pytest.raises(AssertionError, match="the model was loaded"):
        main(["segment", str(broken["rescaled_0_1.mha"]), "--prompts", "liver", "--output",
              str(tmp_path / "x.seg.nrrd"), "--progress", "none", "--skip-input-check"])
    capfd.readouterr()
    for damaged, words in (("truncated.nii.gz", "truncated"), ("nan.mha", "NaN")):
        assert main(["segment", str(broken[damaged]), "--prompts", "liver", "--output",
                     str(tmp_path / "x.seg.nrrd"), "--progress", "none", "--skip-input-check"]) == 2
        assert words in capfd.readouterr().err
