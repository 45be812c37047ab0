"""MoMESegmentation's pure-Python helpers (no MRML, no Qt): structure names, run settings, model list,
dependency installation with consent, the GPU-memory check, and error messages in plain words.
(The installers run against Slicer's released Python layer in ``test_slicer_dependencies.py``.)"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "MoMESegmentation"))

from MoMESegmentationLib import dependencies as deps  # noqa: E402
from MoMESegmentationLib.errors import translate_engine_error  # noqa: E402
from MoMESegmentationLib.logic import summary  # noqa: E402
from MoMESegmentationLib.models import HubModelCatalog, ModelChoice, default_index  # noqa: E402
from MoMESegmentationLib.parameters import SegmentationParameters  # noqa: E402
from MoMESegmentationLib.segmentation_job import JobOutcome, JobState  # noqa: E402
from MoMESegmentationLib.targets import (  # noqa: E402
    add_preset,
    check_targets,
    completion_names,
    current_item,
    replace_current_item,
)

# -- structure names -------------------------------------------------------------------------------


def test_completion_works_on_the_item_under_the_cursor():
    assert current_item("liver, spl") == "spl"
    assert current_item("liver; left ki", cursor=9) == "le"
    text, cursor = replace_current_item("liver, spl", "spleen")
    assert (text, cursor) == ("liver, spleen, ", len("liver, spleen, "))
    text, _ = replace_current_item("liv, aorta", "liver", cursor=3)
    assert text == "liver, aorta"
    names = completion_names()
    assert "left kidney" in names and "oesophagus" in names and len(names) == len(set(names))


def test_presets_add_their_structures_once():
    text, left_out = add_preset("Liver", "abdominal organs")  # no model given: everything is added
    assert text.startswith("Liver, spleen, right kidney") and text.lower().count("liver") == 1 and not left_out
    assert add_preset(text, "abdominal organs")[0] == text


def test_typed_names_are_checked_with_suggestions():
    check = check_targets("liver, L kidney, livr")
    assert not check.ok and check.names == ["liver", "left kidney"]
    assert "liver" in check.unknown["livr"]
    assert "Unknown: 'livr'" in check.summary()
    assert check_targets("liver, spleen").ok
    free = check_targets("liver, appendix stump", allow_zero_shot=True)
    assert free.ok and len(free.names) == 2 and free.warnings
    assert not check_targets(" , ").ok


# -- run settings -----------------------------------------------------------------------------------


def test_run_settings_are_checked_before_anything_starts():
    assert SegmentationParameters("  ,").validate()
    assert "Unknown device 'tpu'" in " ".join(SegmentationParameters("liver", device="tpu").validate())
    assert SegmentationParameters("liver, spleen", device="cuda", fast=True).validate() == []


# -- model list ---------------------------------------------------------------------------------------


@dataclass
class FakeInstalled:
    name: str
    version: str
    path: Path
    active: bool = False
    description: str = ""
    classes: tuple = ()


def test_model_list_puts_the_active_model_first_and_passes_its_path():
    store = type("Store", (), {"installed": lambda self: [
        FakeInstalled("mome-mini", "1.0.0", Path("/s/mome-mini/1.0.0")),
        FakeInstalled("mome-mini-ft", "2026.1", Path("/s/ft/2026.1"), active=True, classes=("liver",)),
    ]})
    choices = HubModelCatalog(store_factory=store).choices()
    assert [c.label for c in choices] == ["mome-mini-ft 2026.1 (active)", "mome-mini 1.0.0"]
    assert choices[0].argument == "/s/ft/2026.1" and "1 structures" in choices[0].description
    assert default_index(choices, remembered="/s/mome-mini/1.0.0") == 0
    assert default_index([ModelChoice("a", "x"), ModelChoice("b", "y")], remembered="y") == 1


def test_model_list_falls_back_to_the_default_model_when_the_store_is_unavailable():
    def broken():
        raise ImportError("No module named 'torch'")

    catalog = HubModelCatalog(store_factory=broken)
    assert [c.argument for c in catalog.choices()] == [None] and "torch" in catalog.problem
    empty = type("Store", (), {"installed": lambda self: []})
    assert HubModelCatalog(store_factory=empty).choices()[0].argument is None


def test_the_real_model_store_lists_an_installed_model_with_its_path(tmp_path):
    from mome.hub import ModelStore
    from stand_ins import random_package

    store = ModelStore(tmp_path / "store")
    package = random_package("tiny", name="tiny-listed", version="2.0.0").save(tmp_path / "tiny-listed")
    store.install(package, activate=True)
    choices = HubModelCatalog(store_factory=lambda: store).choices()
    assert [c.label for c in choices] == ["tiny-listed 2.0.0 (active)"]
    assert choices[0].argument == str(store.path("tiny-listed", "2.0.0")) and choices[0].active


# -- dependencies -------------------------------------------------------------------------------------


class RecordingPackaging:
    """A Packaging whose check reads a set and whose install records the call (``slicer.packaging``
    itself runs in test_slicer_dependencies.py)."""

    def __init__(self, installed: set[str]):
        self.installed = set(installed)
        self.installs = []

    def check(self, requirement):
        return requirement.name in self.installed

    def install(self, requirements, constraints, reinstall=False):
        self.installs.append(([str(r) for r in requirements], Path(constraints).read_text(), reinstall))
        self.installed |= {r.name for r in requirements}


class TorchUtils:
    """PyTorchUtilsLogic's two calls, with installTorch's real failure mode (it raises)."""

    def __init__(self, installed=False, error: Exception | None = None, packaging=None):
        self.installed, self.error, self.calls, self.packaging = installed, error, [], packaging

    def torchInstalled(self):  # noqa: N802
        return self.installed

    def installTorch(self, **kwargs):  # noqa: N802
        self.calls.append(kwargs)
        if self.error is not None:
            raise self.error
        self.installed = True
        if self.packaging is not None:  # the same Python: pip now sees torch too
            self.packaging.installed |= {"torch", "torchvision"}
        return object()


def manager(packaging, torch, answers, tmp_path):
    asked = []

    def confirm(title, text, details):
        asked.append(text)
        return answers.pop(0)

    reqs = tmp_path / "requirements.txt"
    reqs.write_text("monai>=1.4\nscipy>=1.10\n")
    return deps.DependencyManager(packaging, torch, confirm, reqs), asked


def test_one_question_lists_everything_then_torch_goes_through_pytorchutils(tmp_path):
    packaging = RecordingPackaging({"scipy"})
    torch = TorchUtils(packaging=packaging)
    mgr, asked = manager(packaging, torch, [True], tmp_path)
    report = mgr.ensure()
    assert len(asked) == 1 and "torch" in asked[0] and "monai>=1.4" in asked[0] and "scipy" not in asked[0]
    assert torch.calls == [{"askConfirmation": False, "torchVersionRequirement": ">=2.4",
                            "torchvisionVersionRequirement": ">=0.19"}]
    ((requirements, constraints, reinstall),) = packaging.installs
    assert requirements == ["monai>=1.4"] and not reinstall
    assert "numpy==" in constraints  # what Slicer ships (and is installed here) is pinned
    assert report.installed == ["torch", "torchvision", "monai>=1.4"]


def test_pytorchutils_raising_becomes_a_message_and_nothing_else_is_installed(tmp_path):
    packaging = RecordingPackaging(set())
    mgr, _ = manager(packaging, TorchUtils(error=RuntimeError("ltt failed")), [True], tmp_path)
    with pytest.raises(deps.DependencyError, match="PyTorch could not be installed") as raised:
        mgr.ensure()
    assert "ltt failed" in raised.value.details and not packaging.installs


def test_declining_installs_nothing_and_says_how_to_continue(tmp_path):
    packaging, torch = RecordingPackaging(set()), TorchUtils()
    mgr, _ = manager(packaging, torch, [False], tmp_path)
    with pytest.raises(deps.DependencyDeclined, match="Start again"):
        mgr.ensure()
    assert not torch.calls and not packaging.installs


def test_package_report_and_reinstall(tmp_path):
    packaging = RecordingPackaging({"scipy", "torch", "torchvision", "monai"})
    mgr, _ = manager(packaging, TorchUtils(installed=True), [], tmp_path)
    rows = {r.name: r for r in mgr.package_report()}
    assert rows["torch"].via == "PyTorch Utils" and rows["monai"].via == "pip" and rows["monai"].required == ">=1.4"
    assert all(r.ok for r in rows.values())
    assert mgr.reinstall() == ["monai>=1.4", "scipy>=1.10"] and packaging.installs[-1][2] is True


def test_slicers_own_packages_are_pinned_at_their_installed_versions():
    text = deps.keep_installed_constraints()
    import importlib.metadata

    assert f"numpy=={importlib.metadata.version('numpy')}" in text.splitlines()
    assert not any(line.startswith(("monai", "einops")) for line in text.splitlines())


# -- GPU memory ----------------------------------------------------------------------------------------


def test_gpu_advice_from_free_memory():
    from MoMESegmentationLib.gpu import GIB, GpuMemory, gpu_advice, query_gpu

    small = GpuMemory("Laptop GPU", int(3 * GIB), int(4 * GIB))
    big = GpuMemory("H200", int(130 * GIB), int(140 * GIB))
    assert gpu_advice("auto", big) is None and gpu_advice("cpu", None) is None
    advice = gpu_advice("auto", small)
    # Fast mode is not offered: it needs as much GPU memory (fewer windows of the same size).
    assert "3.0 GB free" in advice and "needs about 4.5 GB (in Fast mode too)" in advice
    assert "Choose the CPU" in advice and "Tick" not in advice
    assert "No CUDA GPU" in gpu_advice("cuda", None)
    import torch

    found = query_gpu(torch)
    assert (found is None) == (not torch.cuda.is_available())


# -- errors in words --------------------------------------------------------------------------------


@pytest.mark.parametrize("code, message, log, expected", [
    (1, "internal error: CUDA out of memory. Tried to allocate 2 GiB", [], "ran out of memory"),
    (2, "--device cuda was requested but PyTorch sees no CUDA GPU (...). Use --device cpu or auto", [],
     "No usable graphics card"),
    (1, "", ["Traceback...", "ModuleNotFoundError: No module named 'monai'"], "packages that MoME needs"),
    (-9, "", ["loading"], "stopped unexpectedly"),
    (1, "internal error: boom", [], "unexpected error"),
    (130, "cancelled", [], "cancelled"),
])
def test_engine_failures_become_plain_words_with_details_kept(code, message, log, expected):
    error = translate_engine_error(code, message, "Traceback (most recent call last): ...", log)
    assert expected in error.message
    assert "--device" not in error.message
    assert f"exit code: {code}" in error.details and (message in error.details)


def test_status_line_says_what_happened_and_how_long_it_took():
    outcome = JobOutcome(JobState.SUCCEEDED, result={"device": "cuda:0", "classes": [{}, {}, {}]}, seconds=125)
    assert summary(outcome, None) == "Segmented 3 structures in 2 min 05 s on GPU."
    failed = JobOutcome(JobState.FAILED, error=translate_engine_error(2, "Unknown structure 'x'."), seconds=3)
    assert summary(failed, None).startswith("Failed after 3 s: MoME does not know")


# -- reliability as the user types, presets, refusals in words ------------------------------------


@pytest.fixture
def mini(tmp_path, monkeypatch):
    """mome-mini 1.1.0's model.json: a bundled model with validated, weak, not-learned and zero-shot
    structures (the default before 2.0.0, still shipped)."""
    monkeypatch.setenv("MOME_HOME", str(tmp_path))
    from mome.hub import resolve_model
    from mome.package import read_package_json

    meta = read_package_json(resolve_model("mome-mini@1.1.0"))
    assert (meta["name"], meta["version"]) == ("mome-mini", "1.1.0"), "the figures below are mome-mini 1.1.0's"
    return meta


def ui_texts() -> set[str]:
    import xml.etree.ElementTree as ET

    root = ET.parse(REPO / "MoMESegmentation" / "Resources" / "UI" / "MoMESegmentation.ui").getroot()
    return {s.text for s in root.iter("string") if s.text}


def test_each_structure_shows_its_reliability_and_a_refused_one_turns_segment_off(mini):
    from MoMESegmentationLib.parameters import ALLOW_NOT_LEARNED_LABEL, ALLOW_ZERO_SHOT_LABEL
    from MoMESegmentationLib.targets import CAUTION, REFUSED

    check = check_targets("liver, aorta", meta=mini)
    assert check.ok and check.model == "mome-mini 1.1.0"
    assert check.lines()[0] == (CAUTION, "liver — weak (Dice 0.66 on 1 patient never seen in training (ircad_1.1))")
    assert check.lines()[1][1].startswith("aorta — not validated (never tested on a new patient; Dice 0.93")

    check = check_targets("liver, spleen, liver tumor", meta=mini)
    assert not check.ok and [r.name for r in check.refused] == ["spleen", "liver tumor"]
    lines = dict((text.split(" — ")[0], (level, text)) for level, text in check.lines())
    assert lines["spleen"] == (REFUSED, "spleen — not learned by mome-mini 1.1.0: refused "
                                        "(Dice 0.00 on 1 patient never seen in training (ircad_1.1))")
    assert lines["liver tumor"][0] == REFUSED and "never trained on it" in lines["liver tumor"][1]
    advice = check.lines()[-1][1]
    assert f"'{ALLOW_NOT_LEARNED_LABEL}'" in advice and f"'{ALLOW_ZERO_SHOT_LABEL}'" in advice
    assert {ALLOW_NOT_LEARNED_LABEL, ALLOW_ZERO_SHOT_LABEL} <= ui_texts()  # the boxes the advice names exist

    # Each opt-in lifts only its own kind of refusal, and says how the guess will be named.
    only_not_learned = check_targets("liver, spleen, liver tumor", allow_not_learned=True, meta=mini)
    assert [r.name for r in only_not_learned.refused] == ["liver tumor"] and not only_not_learned.ok
    both = check_targets("liver, spleen, liver tumor", allow_not_learned=True, allow_zero_shot=True, meta=mini)
    assert both.ok and "named 'spleen (not learned)'" in both.summary()
    assert "named 'liver tumor (zero-shot)'" in both.summary()

    # A name MoME does not know is zero-shot too: unknown (with suggestions) until opted in.
    unknown = check_targets("liver, appendix stump", meta=mini)
    assert not unknown.ok and "appendix stump" in unknown.unknown and ALLOW_ZERO_SHOT_LABEL in unknown.summary()
    free = check_targets("liver, appendix stump", allow_zero_shot=True, meta=mini)
    assert free.ok and "appendix stump — zero-shot (not a name MoME knows" in free.summary()
    assert not any("is not a known structure" in w for w in free.warnings)  # said once, in its own line

    # A package that forbids untrained structures: no opt-in helps, and the advice says so.
    strict = dict(mini, text=dict(mini["text"], allows_free_text=False))
    forbidden = check_targets("liver tumor", allow_zero_shot=True, meta=strict)
    assert not forbidden.ok and "does not allow structures it was not trained on" in forbidden.summary()
    assert ALLOW_ZERO_SHOT_LABEL not in forbidden.summary()


def test_without_the_models_figures_the_names_are_still_checked_and_the_reason_shown():
    check = check_targets("liver, aorta", model_problem="model package /x does not exist")
    assert check.ok and "2 structure(s): liver, aorta" in check.summary()
    assert "cannot be shown: model package /x does not exist" in check.summary()


def test_presets_add_only_what_the_model_segments_and_name_the_rest(mini):
    from MoMESegmentationLib.targets import preset_coverage

    text, left_out = add_preset("", "abdominal organs", meta=mini)
    assert text == "liver, stomach, duodenum, small bowel, colon, urinary bladder"
    assert {r.name: r.status for r in left_out} == {
        "spleen": "not_learned", "right kidney": "not_learned", "left kidney": "not_learned",
        "gallbladder": "not_learned", "pancreas": "not_learned", "right adrenal gland": "zero_shot",
        "left adrenal gland": "zero_shot", "rectum": "zero_shot"}
    assert check_targets(text, meta=mini).ok  # what a preset adds never turns Segment off
    assert preset_coverage("abdominal organs", None, mini) == (6, 14)

    # Head and neck: mome-mini was never trained on any of it.
    text, left_out = add_preset("liver", "head and neck", meta=mini)
    assert text == "liver" and len(left_out) == 7 and {r.status for r in left_out} == {"zero_shot"}
    text, left_out = add_preset("", "head and neck", meta=mini, allow_zero_shot=True)
    assert not left_out and text == ("left parotid gland, right parotid gland, brainstem, spinal cord, mandible, "
                                     "larynx, esophagus")
    # A model trained on them (no figures yet: "not validated") gets all seven, none refused.
    from mome.vocabulary import load_vocabulary, preset_classes

    hn = {"name": "hn-model", "version": "1.0.0", "text": {"allows_free_text": True},
          "classes": [{"key": c.key, "name": c.name} for c in preset_classes("head and neck", load_vocabulary())]}
    assert preset_coverage("head and neck", None, hn) == (7, 7)
    assert {r.status for r in check_targets(text, meta=hn).reliability} == {"not_validated"}


def test_refusals_and_input_checks_from_the_engine_become_clinicians_words(mini):
    """The engine's own error events (built by its own exception classes) in the panel's words."""
    import numpy as np
    from mome.inference.reliability import UnreliableStructureError, assess, refuse_unreliable
    from mome.io.plausibility import ImplausibleInputError, check_ct_values
    from mome.vocabulary import load_vocabulary, parse_prompts
    from MoMESegmentationLib.errors import InputCheckError, RefusedStructuresError
    from MoMESegmentationLib.parameters import ALLOW_NOT_LEARNED_LABEL, SEGMENT_ANYWAY_LABEL

    classes = parse_prompts("liver, spleen", load_vocabulary()).classes
    with pytest.raises(UnreliableStructureError) as refused:
        refuse_unreliable(assess(classes, mini), mini)
    event = {"event": "error", "message": str(refused.value), **refused.value.event_fields()}
    error = translate_engine_error(2, event["message"], "Traceback (most recent call last): ...", [], event=event)
    assert isinstance(error, RefusedStructuresError)
    assert error.message.startswith("mome-mini 1.1.0 would only guess this structure, so MoME did not segment")
    assert "spleen — not learned (Dice 0.00 on 1 patient never seen in training (ircad_1.1))" in error.message
    assert f"tick '{ALLOW_NOT_LEARNED_LABEL}'" in error.message and "'spleen (not learned)'" in error.message
    assert "mome-mini 1.1.0 segments: liver, stomach, small bowel" in error.message
    for cli in ("--allow", "Traceback", "mome classes"):
        assert cli not in error.message
    assert "Traceback" in error.details
    scripted = error.for_script().message
    assert "pass allow_not_learned=True" in scripted and "tick" not in scripted

    blank = check_ct_values(np.zeros((8, 8, 8), np.int16), "input.nrrd")
    event = {"event": "error", "message": blank.message, **ImplausibleInputError(blank).event_fields()}
    error = translate_engine_error(2, event["message"], "", [], event=event, renames={"input.nrrd": "'Patient CT'"})
    assert isinstance(error, InputCheckError) and error.overridable and error.code == "constant"
    assert error.message.startswith("This volume does not look like a CT in Hounsfield units.")
    assert "Every voxel of 'Patient CT' has the value 0" in error.message and "input.nrrd" not in error.message
    assert f"choose '{SEGMENT_ANYWAY_LABEL}'" in error.message and "--skip-input-check" not in error.message
    assert "pass skip_input_check=True" in error.for_script().message

    damaged = np.zeros((8, 8, 8), np.float32)
    damaged[0, 0, 0] = np.nan
    nan = check_ct_values(damaged, "input.nrrd")
    error = translate_engine_error(2, nan.message, "", [], event={"input_check": nan.to_dict()})
    assert isinstance(error, InputCheckError) and not error.overridable
    assert error.message.startswith("This volume is damaged, so MoME will not segment it.")
    assert SEGMENT_ANYWAY_LABEL not in error.message


def test_after_a_run_each_structure_says_how_far_it_can_be_trusted(mini):
    from mome.inference.reliability import assess
    from mome.vocabulary import load_vocabulary, parse_prompts
    from MoMESegmentationLib.logic import structure_lines
    from MoMESegmentationLib.targets import CAUTION

    classes = parse_prompts("liver, aorta, spleen", load_vocabulary()).classes
    done = {"device": "cpu", "input_check": {"ok": True, "code": "ok"},
            "classes": [{"key": c.key, "name": c.name, "voxels": v, **r.to_dict()}
                        for c, r, v in zip(classes, assess(classes, mini), (900, 300, 0))]}
    outcome = JobOutcome(JobState.SUCCEEDED, result=done, seconds=42)
    text = summary(outcome, None)
    assert text.startswith("Segmented 3 structures in 42 s on CPU.")
    assert "Not validated as accurate: liver (weak), aorta (not validated)." in text
    assert "Guesses you asked for: spleen (not learned)." in text
    lines = structure_lines(outcome)
    assert lines[0] == (CAUTION, "liver — weak (Dice 0.66 on 1 patient never seen in training (ircad_1.1))")
    assert lines[2][1].startswith("spleen (not learned) — not learned (Dice 0.00") and "nothing found" in lines[2][1]

    skipped = dict(done, input_check={"ok": False, "code": "no_air", "overridable": True})
    assert "does not look like a CT" in summary(JobOutcome(JobState.SUCCEEDED, result=skipped, seconds=1), None)


def test_examples_in_the_panel_and_its_docs_use_only_structures_the_default_model_segments(mini):
    """Help text, placeholder, hints, docstring and README's Slicer examples never suggest a refusal."""
    import re

    from mome.inference.reliability import assess
    from mome.vocabulary import load_vocabulary, parse_prompts

    sources = {
        "module help": ((REPO / "MoMESegmentation" / "MoMESegmentation.py").read_text(),
                        [r"\(e\.g\. <i>([^<]+)</i>\)", r"segment\(volumeNode, '([^']+)'\)"]),
        "logic docstring": ((REPO / "MoMESegmentation" / "MoMESegmentationLib" / "logic.py").read_text(),
                            [r'segment\(volumeNode, "([^"]+)"', r'Segment ``prompts`` \("([^"]+)"\)']),
        "parameters hint": ((REPO / "MoMESegmentation" / "MoMESegmentationLib" / "parameters.py").read_text(),
                            [r"e\.g\. '([^']+)'"]),
        "placeholder": ("\n".join(ui_texts()), [r"^e\.g\. (.+)$"]),
        "README": ((REPO / "README.md").read_text(), [r'logic\.segment\(volume, "([^"]+)"']),
    }
    vocabulary = load_vocabulary()
    for where, (text, patterns) in sources.items():
        found = [m for pattern in patterns for m in re.findall(pattern, text, flags=re.M)]
        assert len(found) >= len(patterns), f"{where}: an example went missing ({patterns})"
        for prompt in found:
            statuses = {r.name: r.status for r in assess(parse_prompts(prompt, vocabulary).classes, mini)}
            refused = {n: s for n, s in statuses.items() if s in ("not_learned", "zero_shot")}
            assert not refused, f"{where} suggests {prompt!r}, which mome-mini refuses: {refused}"
