"""Installing MoME's packages, run against Slicer's *released* Python layer (5.10.0 and 5.12.3) and the
real ``PyTorchUtils.py``, with only Slicer's application object and Qt stood in (``slicer_release``).

pip really runs (offline: ``PIP_NO_INDEX``, wheels from a local folder) and installs into a
throw-away environment, never the one running pytest. Every failure ends in a
``DependencyError`` whose message says what to do: that is what the panels show in a dialog
before they return to their normal state.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from slicer_release import probe_wheel, run_in_slicer

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

SETUP = """
from pathlib import Path
from MoMESegmentationLib import slicer_services
from MoMESegmentationLib.dependencies import DependencyDeclined, DependencyError, DependencyManager, installed_version

def outcome(manager):
    try:
        return {"report": manager.ensure().installed}
    except DependencyDeclined as exc:
        return {"declined": exc.message}
    except DependencyError as exc:
        return {"error": exc.message, "details": exc.details}
    except BaseException as exc:  # anything else would leave the panel stuck
        return {"escaped": f"{type(exc).__name__}: {exc}"}
"""


def requirements(tmp_path: Path, *lines: str) -> Path:
    path = tmp_path / "requirements.txt"
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.mark.parametrize("release, backend", [("v5.10.0", "PipInstallPackaging"), ("v5.12.3", "SlicerPackaging")])
def test_each_release_gets_its_own_installer_and_slicer_packaging_is_imported_explicitly(release, backend, tmp_path):
    facts, _ = run_in_slicer(release, SETUP + """
fresh = hasattr(__import__("slicer"), "packaging")
report(fresh=fresh, backend=type(slicer_services.packaging()).__name__)
""", tmp_path)
    assert facts["fresh"] is False, "slicer/__init__.py does not import slicer.packaging in any release"
    assert facts["backend"] == backend


def test_a_failing_pytorch_install_ends_in_a_clear_error(tmp_path):
    """Real PyTorchUtils, torch absent: installTorch needs light-the-torch, pip cannot get it and
    PyTorchUtils raises; MoME turns that into a message that says where to go next."""
    reqs = requirements(tmp_path, "packaging>=20")
    facts, output = run_in_slicer("v5.12.3", SETUP + f"""
manager = slicer_services.dependency_manager(Path({str(reqs)!r}))
report(installer=type(manager.torch_installer).__name__, **outcome(manager))
""", tmp_path, pytorchutils=True, hide=("torch", "torchvision", "light_the_torch"))
    assert facts["installer"] == "PyTorchUtilsLogic"
    assert "error" in facts, facts
    assert "PyTorch could not be installed" in facts["error"] and "PyTorch Utils" in facts["error"]
    assert "installTorch failed: CalledProcessError" in facts["details"]
    assert "light-the-torch" in output  # PyTorchUtils really asked pip for it


def test_without_the_pytorch_extension_the_user_is_told_to_install_it(tmp_path):
    facts, _ = run_in_slicer("v5.12.3", SETUP + """
manager = slicer_services.dependency_manager()
report(installer=manager.torch_installer, **outcome(manager))
""", tmp_path, hide=("torch", "torchvision"))
    assert facts["installer"] is None
    assert "Extensions Manager" in facts["error"] and "PyTorch" in facts["error"]


@pytest.mark.parametrize("release", ["v5.10.0", "v5.12.3"])
def test_a_failing_pip_install_ends_in_a_clear_error(release, tmp_path):
    reqs = requirements(tmp_path, "mome-absent-package>=1.0")
    facts, _ = run_in_slicer(release, SETUP + f"""
report(**outcome(slicer_services.dependency_manager(Path({str(reqs)!r}))))
""", tmp_path, pytorchutils=True)
    assert "Installing MoME's Python packages failed" in facts["error"], facts
    assert "CalledProcessError" in facts["details"]


def install_from_wheels(release: str, tmp_path: Path, requirement: str, watched: str) -> tuple[dict, str]:
    """``ensure()`` with Slicer's own installer and pip offline, wheels from ``tmp_path/wheels``;
    the facts include the version of ``watched`` before and after."""
    reqs = requirements(tmp_path, requirement)
    return run_in_slicer(release, SETUP + f"""
before = installed_version({watched!r})
result = outcome(slicer_services.dependency_manager(Path({str(reqs)!r})))
import importlib
importlib.invalidate_caches()
report(before=before, after=installed_version({watched!r}), **result)
""", tmp_path, pytorchutils=True, env={"PIP_FIND_LINKS": str(tmp_path / "wheels")})


@pytest.mark.parametrize("release", ["v5.10.0", "v5.12.3"])
def test_missing_packages_are_installed_after_one_question(release, tmp_path):
    probe_wheel(tmp_path / "wheels", "mome-probe", "1.2")
    facts, output = install_from_wheels(release, tmp_path, "mome-probe>=1.1", "mome-probe")
    assert facts["before"] is None and facts["after"] == "1.2", output[-3000:]
    assert facts["report"] == ["mome-probe>=1.1"]
    assert output.count("MoME needs these Python packages") == 1  # one question (Slicer's dialog code logs it)


@pytest.mark.parametrize("release", ["v5.10.0", "v5.12.3"])
def test_a_package_that_slicer_ships_is_never_replaced(release, tmp_path):
    """A requirement whose dependency would downgrade ``packaging`` (Slicer ships it) fails cleanly;
    the installed packaging stays as it was."""
    probe_wheel(tmp_path / "wheels", "mome-probe", "1.0", requires=("packaging<20",))
    probe_wheel(tmp_path / "wheels", "packaging", "19.0")
    facts, output = install_from_wheels(release, tmp_path, "mome-probe>=1.0", "packaging")
    assert facts["after"] == facts["before"] != "19.0"
    assert "error" in facts, output[-3000:]


def test_declining_installs_nothing(tmp_path):
    reqs = requirements(tmp_path, "mome-probe>=1.0")
    probe_wheel(tmp_path / "wheels", "mome-probe", "1.0")
    facts, _ = run_in_slicer("v5.12.3", SETUP + f"""
manager = DependencyManager(slicer_services.packaging(), slicer_services.torch_installer(),
                            lambda title, text, details: False, Path({str(reqs)!r}))
report(installed=installed_version("mome-probe"), **outcome(manager))
""", tmp_path, pytorchutils=True, env={"PIP_FIND_LINKS": str(tmp_path / "wheels")})
    assert "declined" in facts and facts["installed"] is None
