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
    assert gpu_advice("auto", False, big) is None and gpu_advice("cpu", False, None) is None
    advice = gpu_advice("auto", False, small)
    assert "3.0 GB free" in advice and "Fast" in advice
    assert gpu_advice("auto", True, small) is None  # fast mode fits
    assert "Choose the CPU" in gpu_advice("cuda", True, GpuMemory("tiny", GIB, GIB))
    assert "No CUDA GPU" in gpu_advice("cuda", False, None)
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
