"""``mome segment`` as a user runs it: a real CT in, the requested files out, and a clean stop on SIGTERM."""

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

from mome.io import read_seg_nrrd
from mome.package import Preprocessing

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


def test_segment_writes_every_output_on_the_input_grid(shared_data: Path, package: Path, tmp_path: Path):
    ct = shared_data / "totalseg_example" / "example_ct_sm.nii.gz"
    out = tmp_path / "out"
    run = mome("segment", str(ct), "--prompts", "liver; L kidney", "--model", str(package), "--overlap", "0",
               "--output", str(out / "ct.seg.nrrd"), "--labelmap", str(out / "ct_labels.nii.gz"),
               "--stats", str(out / "stats.json"), "--preview", str(out / "preview.png"), "--progress", "json")
    stdout, stderr = run.communicate(timeout=300)
    assert run.returncode == 0, stderr[-2000:]
    done = json.loads(stdout.strip().splitlines()[-1])
    assert done["event"] == "done" and [c["key"] for c in done["classes"]] == ["liver", "kidney_left"]
    image = sitk.ReadImage(str(ct))
    labels = sitk.ReadImage(str(out / "ct_labels.nii.gz"))
    assert labels.GetSize() == image.GetSize()
    assert np.allclose(labels.GetSpacing(), image.GetSpacing()) and np.allclose(labels.GetOrigin(), image.GetOrigin())
    segments, arrays, _ = read_seg_nrrd(out / "ct.seg.nrrd")
    assert [s["name"] for s in segments] == ["liver", "left kidney"]
    assert arrays[0].shape == sitk.GetArrayViewFromImage(image).shape
    stats = json.loads((out / "stats.json").read_text())
    assert [row["key"] for row in stats] == ["liver", "kidney_left"]
    voxel_ml = np.prod(image.GetSpacing()) / 1000
    assert [row["volume_ml"] for row in stats] == pytest.approx([a.sum() * voxel_ml for a in arrays], rel=1e-6)
    assert (out / "preview.png").stat().st_size > 1000


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
