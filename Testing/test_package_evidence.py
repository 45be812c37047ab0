"""Per-class evidence in model packages: the schema, the status rules and writing it from `mome evaluate`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mome.cli.main import main
from mome.hub import ModelStore
from mome.package import ModelPackage, PackageFormatError, read_package_json, verify_manifest
from mome.package.evidence import (
    Study,
    add_study,
    class_status,
    class_statuses,
    read_evidence,
    study_from_evaluation,
    write_evidence,
)
from stand_ins import random_package


def study(kind: str, values: dict[str, float], version: str = "1.0.0", n: int = 1, data: str = "d") -> Study:
    return Study(kind=kind, model_version=version, data=data, classes={k: (v, n) for k, v in values.items()})


def test_status_comes_from_the_most_trustworthy_figure():
    studies = [study("training", {"liver": 0.9, "spleen": 0.9, "pancreas": 0.0, "kidney_left": 0.5}),
               study("held_out", {"liver": 0.8, "spleen": 0.05}, n=3)]
    assert class_status("liver", studies, "1.0.0").status == "validated"
    assert class_status("spleen", studies, "1.0.0").status == "not_learned"  # held out beats the fit
    assert class_status("pancreas", studies, "1.0.0").status == "not_learned"
    assert class_status("kidney_left", studies, "1.0.0").status == "weak"
    fit_only = class_status("liver", studies[:1], "1.0.0")
    assert fit_only.status == "not_validated" and "never tested on a new patient" in fit_only.reason
    none = class_status("aorta", studies, "1.0.0")
    assert none.status == "not_validated" and none.value is None
    held = class_status("liver", studies, "1.0.0")
    assert held.value == 0.8 and held.n == 3 and "3 patients never seen in training" in held.reason


def test_figures_of_another_version_never_decide():
    history = [study("held_out", {"liver": 0.95}, version="0.9.0")]
    assert class_status("liver", history, "1.0.0").status == "not_validated"


def test_same_kind_studies_are_weighted_by_their_case_counts():
    studies = [study("held_out", {"liver": 0.9}, n=3, data="a"), study("held_out", {"liver": 0.3}, n=1, data="b")]
    status = class_status("liver", studies, "1.0.0")
    assert status.value == pytest.approx(0.75) and status.n == 4 and status.status == "validated"


def test_a_value_is_judged_as_shown():
    # 0.098 is shown as 0.10 and must not be called "below 0.10".
    assert class_status("x", [study("training", {"x": 0.098})], "1.0.0").status == "weak"


def test_malformed_evidence_is_a_format_error():
    meta = {"version": "1", "classes": [{"key": "liver"}]}
    for bad in ([{"kind": "guess", "model_version": "1", "data": "d", "classes": {}}],
                [{"kind": "training", "model_version": "1", "data": "d", "classes": {"liver": {"value": 1.5, "n": 1}}}],
                [{"kind": "training", "model_version": "1", "data": "d", "classes": {"liver": {"value": 0.5}}}],
                {"not": "a list"}):
        with pytest.raises(PackageFormatError):
            class_statuses({**meta, "evidence": bad})


EVALUATION = {"model": "random-test 0.0.0", "split": "test", "grid": {"spacing_mm": [3.0, 3.0, 3.0]},
              "per_class": {"liver": {"dice": 0.81, "nsd": 0.5, "hd95_mm": 9.0, "cases": 2},
                            "spleen": {"dice": 0.0, "nsd": 0.0, "hd95_mm": None, "cases": 2}},
              "per_case": [{"case": "new/p1"}, {"case": "new/p2"}]}


def test_study_from_an_evaluation_and_refusals():
    made = study_from_evaluation(EVALUATION, "held_out", "two new patients")
    assert made.model_version == "0.0.0" and made.classes == {"liver": (0.81, 2), "spleen": (0.0, 2)}
    assert made.grid == "3×3×3 mm model grid" and "split test" in made.source
    meta = {"name": "random-test", "version": "0.0.0", "classes": [{"key": "liver"}],
            "provenance": {"dataset": {"train_cases": ["new/p1"]}}}
    with pytest.raises(ValueError, match="does not have: spleen"):
        add_study(meta, made)
    meta["classes"].append({"key": "spleen"})
    with pytest.raises(ValueError, match="training cases"):
        add_study(meta, made, cases=["new/p1", "new/p2"])  # a training case is not held out
    added = add_study(meta, made, cases=["new/p2"])
    again = add_study(added, made, cases=["new/p2"])  # the same study replaces itself
    assert len(read_evidence(again)) == 1
    with pytest.raises(ValueError, match="not the output of `mome evaluate`"):
        study_from_evaluation({"per_class": {}}, "training", "x")


def test_evidence_is_written_into_a_package_and_survives_load_and_save(tmp_path: Path):
    folder = random_package(class_keys=["liver", "spleen"]).save(tmp_path / "pkg")
    write_evidence(folder, study_from_evaluation(EVALUATION, "held_out", "two new patients"))
    verify_manifest(folder)  # re-signed: the package is still intact
    meta = read_package_json(folder)
    statuses = class_statuses(meta)
    assert statuses["liver"].status == "validated" and statuses["spleen"].status == "not_learned"
    package = ModelPackage.load(folder)
    assert package.info.evidence == meta["evidence"]
    again = package.save(tmp_path / "copy")
    assert read_package_json(again)["evidence"] == meta["evidence"]


def test_models_add_evidence_cli_and_its_refusal_of_installed_models(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("MOME_HOME", str(tmp_path / "home"))
    folder = random_package(class_keys=["liver", "spleen"]).save(tmp_path / "pkg")
    evaluation = tmp_path / "eval.json"
    evaluation.write_text(json.dumps(EVALUATION))
    assert main(["models", "add-evidence", str(folder), str(evaluation), "--kind", "held_out", "--data", "p1+p2"]) == 0
    assert main(["models", "evidence", str(folder)]) == 0
    out = capsys.readouterr().out
    assert "validated" in out and "not learned" in out and "Dice 0.81 on 2 patients never seen in training" in out
    installed = ModelStore().install(folder)
    assert main(["models", "add-evidence", str(installed.path), str(evaluation), "--kind", "training",
                 "--data", "x"]) == 2
    assert "installed models never change" in capsys.readouterr().err


def test_reliability_of_requested_structures_and_what_is_refused():
    from mome.inference.reliability import Structure, UnreliableStructureError, assess, refuse_unreliable

    meta = {"name": "m", "version": "1.0.0", "text": {"allows_free_text": True},
            "classes": [{"key": "liver", "name": "liver"}, {"key": "spleen", "name": "spleen"},
                        {"key": "aorta", "name": "aorta"}],
            "evidence": [study("held_out", {"liver": 0.5, "spleen": 0.0}).to_dict()]}
    wanted = [Structure("liver", "liver"), Structure("spleen", "spleen"), Structure("aorta", "aorta"),
              Structure("liver_tumor", "liver tumor")]
    found = {r.key: r for r in assess(wanted, meta)}
    assert {k: r.status for k, r in found.items()} == {
        "liver": "weak", "spleen": "not_learned", "aorta": "not_validated", "liver_tumor": "zero_shot"}
    assert [found[k].display_name for k in found] == ["liver", "spleen (not learned)", "aorta",
                                                      "liver tumor (zero-shot)"]
    with pytest.raises(UnreliableStructureError) as refused:
        refuse_unreliable(list(found.values()), meta)
    assert [r.key for r in refused.value.refused] == ["spleen", "liver_tumor"]
    assert "This model segments: liver, aorta" in str(refused.value)
    fields = refused.value.event_fields()["refused"]
    assert [f["opt_in_flag"] for f in fields] == ["--allow-not-learned", "--allow-zero-shot"]
    refuse_unreliable(list(found.values()), meta, allow_zero_shot=True, allow_not_learned=True)  # opted in
    closed = {**meta, "text": {"allows_free_text": False}}
    with pytest.raises(UnreliableStructureError, match="does not allow untrained structures"):
        refuse_unreliable([found["liver_tumor"]], closed, allow_zero_shot=True)
