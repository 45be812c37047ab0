"""``mome evaluate``: every manifest problem reported at once, and output that is valid JSON."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from mome.cli.main import main
from mome.package import Preprocessing
from mome.training.evaluate import _metrics
from stand_ins import random_package
from training_fixtures import phantom_manifest

PRE = Preprocessing(spacing=(3.0, 3.0, 3.0), patch_size=(64, 64, 64))


def _strict(text: str):
    """json.loads that refuses Infinity and NaN, as every strict JSON reader does."""
    def refuse(constant):
        raise ValueError(f"{constant} is not JSON")

    return json.loads(text, parse_constant=refuse)


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    return phantom_manifest(tmp_path_factory.mktemp("phantoms"), n_train=1, n_val=1)


def test_all_manifest_problems_at_once_and_worded_for_an_evaluation(data: Path, tmp_path: Path, capsys):
    manifest = json.loads(data.read_text())
    case = manifest["datasets"][0]["cases"][1]
    folder = data.parent
    manifest["datasets"].append({"name": "mine", "cases": [
        {"id": "gone", "image": "nowhere.nii.gz", "masks": {"liver": case["labels"]}, "split": "val"},
        {"id": "typo", "image": case["image"], "masks": {"livr": case["labels"]}, "split": "val"},
    ]})
    broken = folder / "broken.json"
    broken.write_text(json.dumps(manifest))
    package = random_package(preprocessing=PRE).save(tmp_path / "pkg")
    assert main(["evaluate", "--model", str(package), "--data", str(broken), "--progress", "none"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("mome evaluate: error: the evaluation data has 2 problem(s); nothing was evaluated")
    assert "nowhere.nii.gz does not exist" in err and "'livr' is not in the vocabulary (closest: liver" in err
    assert "Traceback" not in err and "trained" not in err


def test_a_model_without_the_manifest_classes_is_a_clear_error(data: Path, tmp_path: Path, capsys):
    package = random_package(preprocessing=PRE, class_keys=["aorta"]).save(tmp_path / "pkg")
    assert main(["evaluate", "--model", str(package), "--data", str(data), "--progress", "none"]) == 2
    err = capsys.readouterr().err
    assert "has none of the classes the 'val' cases annotate (liver, spleen)" in err and "Traceback" not in err


def test_output_is_strict_json_even_when_nothing_is_predicted(data: Path, tmp_path: Path):
    empty = _metrics(np.zeros((8, 8, 8), bool), np.ones((8, 8, 8), bool), np.ones(3), 2.0)
    assert empty["hd95_mm"] is None and "nothing was predicted" in empty["hd95_note"]
    package = random_package(preprocessing=PRE, class_keys=["liver", "spleen"]).save(tmp_path / "pkg")
    out = tmp_path / "metrics.json"
    assert main(["evaluate", "--model", str(package), "--data", str(data), "--out", str(out),
                 "--progress", "none"]) == 0
    result = _strict(out.read_text())
    assert set(result["per_class"]) == {"liver", "spleen"}
    for key, metrics in result["per_class"].items():
        assert metrics["hd95_mm"] is None or np.isfinite(metrics["hd95_mm"])
        dices = [row["classes"][key]["dice"] for row in result["per_case"] if key in row["classes"]]
        assert metrics["cases"] == len(dices) and metrics["dice"] == pytest.approx(np.mean(dices))
        assert metrics["dice_sd"] == (pytest.approx(np.std(dices, ddof=1)) if len(dices) > 1 else None)


def test_the_window_overlap_is_the_fast_modes_unless_told_and_is_recorded(data: Path, tmp_path: Path, capsys):
    package = random_package(preprocessing=PRE, class_keys=["liver", "spleen"]).save(tmp_path / "pkg")
    for given, expected in ((None, 0.25), ("0.5", 0.5)):
        out = tmp_path / f"metrics-{expected}.json"
        extra = ["--overlap", given] if given else []
        assert main(["evaluate", "--model", str(package), "--data", str(data), "--out", str(out),
                     "--progress", "none", *extra]) == 0
        assert _strict(out.read_text())["sliding_window"] == {"patch_size": [64, 64, 64], "overlap": expected}
    assert main(["evaluate", "--model", str(package), "--data", str(data), "--overlap", "1", "--progress", "none"]) == 2
    assert "--overlap must be in [0, 1), got 1.0" in capsys.readouterr().err
