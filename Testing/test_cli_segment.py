"""``mome segment`` as a user runs it: a real CT in, the requested files out with each structure's
reliability, refusals and request errors before any work, and a clean stop on SIGTERM."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
from stand_ins import random_package

from mome.cli.main import main
from mome.io import read_seg_nrrd
from mome.package import Preprocessing
from mome.package.evidence import Study

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def package(tmp_path_factory) -> Path:
    # 3 mm and 64³ windows, like the bundled model: a few windows per CT keep the test quick.
    pre = Preprocessing(spacing=(3.0, 3.0, 3.0), patch_size=(64, 64, 64))
    return random_package("tiny", preprocessing=pre).save(tmp_path_factory.mktemp("pkg") / "random-tiny")


def mome(*args: str, **popen) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "2"}
    return subprocess.Popen([sys.executable, "-m", "mome.cli.main", *args], cwd=REPO, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, **popen)


@pytest.fixture(scope="module")
def evidenced(tmp_path_factory) -> Path:
    """A random package whose evidence says: liver weak (fit 0.5 on training data), left kidney not
    learned (0.0 on a new patient); spleen has no figure (not validated)."""
    pre = Preprocessing(spacing=(3.0, 3.0, 3.0), patch_size=(64, 64, 64))
    package = random_package("tiny", preprocessing=pre, class_keys=["liver", "spleen", "kidney_left"])
    package.info.evidence = [
        Study("training", package.info.version, "scan A", {"liver": (0.5, 1)}).to_dict(),
        Study("held_out", package.info.version, "patient B", {"kidney_left": (0.0, 1)}).to_dict(),
    ]
    return package.save(tmp_path_factory.mktemp("pkg") / "evidenced")


def test_segment_writes_every_output_on_the_input_grid(shared_data: Path, evidenced: Path, tmp_path: Path):
    ct = shared_data / "totalseg_example" / "example_ct_sm.nii.gz"
    out = tmp_path / "out"
    args = ("segment", str(ct), "--prompts", "liver; L kidney", "--model", str(evidenced), "--overlap", "0",
            "--output", str(out / "ct.seg.nrrd"), "--labelmap", str(out / "ct_labels.nii.gz"),
            "--stats", str(out / "stats.json"), "--preview", str(out / "preview.png"), "--progress", "json",
            "--allow-not-learned")
    run = mome(*args)
    stdout, stderr = run.communicate(timeout=300)
    assert run.returncode == 0, stderr[-2000:]
    done = json.loads(stdout.strip().splitlines()[-1])
    assert done["event"] == "done" and [c["key"] for c in done["classes"]] == ["liver", "kidney_left"]
    # What the Slicer panel reads: each structure's status and the figure behind it.
    liver, kidney = done["classes"]
    # Weak keeps its plain name (Slicer matches names on update); not learned (opted in) is marked.
    assert (liver["status"], liver["status_label"], liver["display_name"]) == ("weak", "weak", "liver")
    assert "Dice 0.50 on its own training data (scan A)" == liver["evidence"]
    assert (kidney["status"], kidney["display_name"]) == ("not_learned", "left kidney (not learned)")
    assert done["input_check"]["ok"] and done["input_check"]["code"] == "ok"
    assert set(done["outputs"]) == {"segmentation", "labelmap", "legend_slicer", "legend_itksnap", "stats", "preview"}
    image = sitk.ReadImage(str(ct))
    labels = sitk.ReadImage(str(out / "ct_labels.nii.gz"))
    assert labels.GetSize() == image.GetSize()
    assert np.allclose(labels.GetSpacing(), image.GetSpacing()) and np.allclose(labels.GetOrigin(), image.GetOrigin())
    segments, arrays, _ = read_seg_nrrd(out / "ct.seg.nrrd")
    assert [s["name"] for s in segments] == ["liver", "left kidney (not learned)"]
    assert segments[0]["tags"]["MoME.Reliability"] == "weak"
    assert segments[1]["tags"]["MoME.Reliability"] == "not learned"
    assert "patient B" in segments[1]["tags"]["MoME.Evidence"]
    assert arrays[0].shape == sitk.GetArrayViewFromImage(image).shape
    stats = json.loads((out / "stats.json").read_text())
    assert [(row["key"], row["label_value"], row["status"]) for row in stats] == [
        ("liver", 1, "weak"), ("kidney_left", 2, "not learned")]
    voxel_ml = np.prod(image.GetSpacing()) / 1000
    assert [row["volume_ml"] for row in stats] == pytest.approx([a.sum() * voxel_ml for a in arrays], abs=0.005)
    assert "2 left_kidney_(not_learned)" in (out / "ct_labels.ctbl").read_text()
    assert (out / "preview.png").stat().st_size > 1000

    # The documented command can be run again: refused without --overwrite, fine with it.
    again = mome(*args)
    stdout, _ = again.communicate(timeout=300)
    assert again.returncode == 2 and "--overwrite" in json.loads(stdout.splitlines()[-1])["message"]
    again = mome(*args, "--overwrite")
    _, stderr = again.communicate(timeout=300)
    assert again.returncode == 0, stderr[-2000:]


def run_cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(["segment", *argv, "--progress", "none"])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_structures_the_model_cannot_be_trusted_with_are_refused_first(evidenced: Path, tmp_path: Path, capsys):
    out = tmp_path / "x.seg.nrrd"
    # The input does not even exist: the refusal comes before the CT is read.
    code, _, err = run_cli(capsys, "missing.nii.gz", "--prompts", "liver, left kidney, liver tumor",
                           "--model", str(evidenced), "--output", str(out))
    assert code == 2 and len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert "never trained on 'liver tumor'" in err and "--allow-zero-shot" in err
    assert "has not learned 'left kidney'" in err and "Dice 0.00 on 1 patient never seen in training" in err
    assert "--allow-not-learned" in err and "This model segments: liver, spleen" in err
    assert not out.exists()
    # Opting in to one kind only still refuses the other.
    code, _, err = run_cli(capsys, "missing.nii.gz", "--prompts", "liver, left kidney, liver tumor",
                           "--model", str(evidenced), "--output", str(out), "--allow-not-learned")
    assert code == 2 and "liver tumor" in err and "left kidney" not in err.split("This model")[0]
    # Both opted in: the next problem is the missing input.
    code, _, err = run_cli(capsys, "missing.nii.gz", "--prompts", "liver, left kidney, liver tumor",
                           "--model", str(evidenced), "--output", str(out), "--allow-not-learned",
                           "--allow-zero-shot")
    assert code == 2 and "Input not found" in err


def test_request_errors_are_one_line_before_any_work(evidenced: Path, tmp_path: Path, capsys):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    for prompts, output, words in [
        ("liver", blocker / "out.seg.nrrd", "is a file, not a folder"),
        (" , ; ", tmp_path / "o.seg.nrrd", "No structures given"),
        ("banana", tmp_path / "o.seg.nrrd", "Unknown structure 'banana'"),
    ]:
        code, _, err = run_cli(capsys, "missing.nii.gz", "--prompts", prompts, "--model", str(evidenced),
                               "--output", str(output))
        assert code == 2 and words in err and len(err.strip().splitlines()) == 1, err
        assert "Did you mean" not in err  # nothing absurd for "banana"
    if Path("/proc").is_dir():  # a file system nobody can create files in, not even root
        code, _, err = run_cli(capsys, "missing.nii.gz", "--prompts", "liver", "--model", str(evidenced),
                               "--output", "/proc/mome-test/out.seg.nrrd")
        assert code == 2 and "cannot write into /proc/mome-test" in err


def test_sigterm_stops_cleanly_and_leaves_no_output(shared_data: Path, package: Path, tmp_path: Path):
    ct = shared_data / "totalseg_example" / "example_ct.nii.gz"
    out = tmp_path / "ct.seg.nrrd"
    run = mome("segment", str(ct), "--prompts", "liver, spleen", "--model", str(package), "--output", str(out),
               "--labelmap", str(tmp_path / "labels.nrrd"), "--progress", "json")
    events = []
    for line in run.stdout:  # stop as soon as the network has started on the windows
        events.append(json.loads(line))
        if events[-1].get("stage") == "inference" and events[-1].get("window"):
            run.send_signal(signal.SIGTERM)
            break
    rest, stderr = run.communicate(timeout=120)
    events += [json.loads(line) for line in rest.splitlines() if line.startswith("{")]
    assert run.returncode == 130, stderr[-2000:]
    assert events[-1]["event"] == "error" and "cancelled" in events[-1]["message"]
    assert sorted(p.name for p in tmp_path.iterdir()) == [], "a partial or temporary file was left behind"
