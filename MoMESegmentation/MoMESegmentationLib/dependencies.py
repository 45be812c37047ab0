"""The third-party packages MoME's engine needs in Slicer's Python, and installing them with consent.

Asked for only when a run starts (Segment, Build dataset, Start, Compare), after one confirmation
that lists everything missing:

* ``torch``/``torchvision`` through the PyTorch extension's ``PyTorchUtilsLogic.installTorch``,
  which picks the wheel matching the GPU driver (plain pip would bring a CPU-only or mismatched
  CUDA build);
* everything else from ``Resources/requirements.txt``: with ``slicer.packaging.pip_ensure`` on
  Slicer 5.12 and newer, with ``slicer.util.pip_install`` and our own version checks on 5.10
  (which has no ``slicer.packaging``).

**Never replace what Slicer ships.** Slicer's own modules use the Python packages it bundles
(pydicom 2.4.4 in 5.10 and 3.0.2 in 5.12 for its DICOM module, SimpleITK with Slicer's IO, numpy,
highdicom in 5.12, ...). So ``requirements.txt`` names none of them (``SLICER_BUNDLED_PACKAGES``,
checked by ``Testing/test_extension_packaging.py``), and every install runs with a pip
*constraints* file that pins each of them, and torch, to the version installed: pip then either
finds versions of MoME's packages that work with them, or fails with a message; it never upgrades
or downgrades Slicer's packages behind its back. DICOM-SEG export inside Slicer goes through
Slicer's own exporter (core in 5.12, QuantitativeReporting in 5.10); highdicom is the engine's
command-line route only.

Everything Slicer-specific (``slicer.packaging``, ``PyTorchUtilsLogic``, the confirmation dialog)
is injected by ``slicer_services.dependency_manager``; this module imports neither Slicer nor Qt.
"""

from __future__ import annotations

import importlib.metadata
import logging
import os
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from .errors import FriendlyError

LIB_DIR = Path(__file__).resolve().parent
REQUIREMENTS_FILE = LIB_DIR.parent / "Resources" / "requirements.txt"

#: Installed through PyTorchUtils, never through pip (same minimums as pyproject.toml).
TORCH_REQUIREMENT = ">=2.4"
TORCHVISION_REQUIREMENT = ">=0.19"
REQUESTER = "MoME"

#: Python distributions bundled with Slicer 5.10.0 and 5.12.3: the pip pins of
#: ``SuperBuild/External_python-*.cmake`` at tags v5.10.0 (a2b6d082be) and v5.12.3 (9034c71a8f) of
#: Slicer/Slicer, plus SimpleITK and VTK, which 5.10 builds from source. Inside Slicer, MoME's
#: requirements never name one of these, and installs keep them at the version Slicer has.
SLICER_BUNDLED_PACKAGES = frozenset(canonicalize_name(n) for n in (
    # both releases
    "pydicom", "pillow", "numpy", "scipy", "packaging", "pyparsing", "requests", "urllib3", "idna", "certifi",
    "charset-normalizer", "chardet", "six", "python-dateutil", "typing_extensions", "retrying", "dicomweb-client",
    "couchdb", "GitPython", "gitdb", "smmap", "PyGithub", "PyJWT", "cryptography", "cffi", "pycparser", "PyNaCl",
    "wrapt", "Deprecated", "pip", "setuptools", "wheel", "SimpleITK", "vtk",
    # 5.12 adds DICOM SEG export in core
    "highdicom", "dcmqi", "pyjpegls",
))
#: Pinned too while installing: PyTorchUtils owns them.
TORCH_PACKAGES = frozenset({"torch", "torchvision"})


class DependencyError(FriendlyError):
    """A dependency is missing and cannot be installed from here; the message says what to do."""


class DependencyDeclined(DependencyError):
    """The user chose not to install the packages MoME needs."""


class Packaging(Protocol):
    """Checking and installing requirements in this Python (see :class:`SlicerPackaging`)."""

    def check(self, requirement: Requirement) -> bool: ...

    def install(self, requirements: list[Requirement], constraints: Path, reinstall: bool = False) -> None: ...


#: pip options for "Reinstall": the packages themselves again, their dependencies left as they are.
REINSTALL_OPTIONS = ["--force-reinstall", "--no-deps"]


class TorchInstaller(Protocol):
    """The part of the PyTorch extension's ``PyTorchUtilsLogic`` used here."""

    def torchInstalled(self) -> bool: ...  # noqa: N802 - Slicer's names

    def installTorch(self, askConfirmation: bool = False, forceComputationBackend: str | None = None,  # noqa: N802,N803
                     torchVersionRequirement: str | None = None,  # noqa: N803
                     torchvisionVersionRequirement: str | None = None) -> Any: ...  # noqa: N803


def installed_version(name: str) -> str | None:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def requirement_met(requirement: Requirement) -> bool:
    """Whether the installed distribution satisfies ``requirement`` (our own check, for Slicer 5.10)."""
    if requirement.marker is not None and not requirement.marker.evaluate():
        return True
    version = installed_version(requirement.name)
    return version is not None and requirement.specifier.contains(version, prereleases=True)


class SlicerPackaging:
    """Slicer >= 5.12: ``slicer.packaging`` checks, and ``pip_ensure`` installs with its progress dialog
    and its offer to restart when an already imported package changed."""

    def __init__(self, packaging_module: Any):
        self.packaging = packaging_module

    def check(self, requirement: Requirement) -> bool:
        return bool(self.packaging.pip_check(requirement))

    def install(self, requirements: list[Requirement], constraints: Path, reinstall: bool = False) -> None:
        if reinstall:  # pip_ensure installs only what is missing
            self.packaging.pip_install([str(r) for r in requirements] + REINSTALL_OPTIONS, constraints=constraints,
                                       requester=REQUESTER)
        else:
            self.packaging.pip_ensure(requirements, constraints=constraints, prompt_install=False,
                                      prompt_restart=True, requester=REQUESTER)


class PipInstallPackaging:
    """Slicer 5.10 (no ``slicer.packaging``): our own version checks and ``slicer.util.pip_install``."""

    def __init__(self, pip_install: Callable[[list[str]], Any]):
        self.pip_install = pip_install

    def check(self, requirement: Requirement) -> bool:
        return requirement_met(requirement)

    def install(self, requirements: list[Requirement], constraints: Path, reinstall: bool = False) -> None:
        options = REINSTALL_OPTIONS if reinstall else []
        self.pip_install([str(r) for r in requirements] + options + ["-c", str(constraints)])


def load_requirements(path: Path = REQUIREMENTS_FILE) -> list[Requirement]:
    lines = (line.split("#", 1)[0].strip() for line in Path(path).read_text(encoding="utf-8").splitlines())
    return [Requirement(line) for line in lines if line and not line.startswith("-")]


def keep_installed_constraints(protected: Iterable[str] = SLICER_BUNDLED_PACKAGES | TORCH_PACKAGES) -> str:
    """A pip constraints file's text pinning every installed distribution of ``protected``."""
    wanted = {canonicalize_name(n) for n in protected}
    pins = {}
    for dist in importlib.metadata.distributions():
        name = canonicalize_name(dist.metadata["Name"] or "")
        if name in wanted:
            pins[name] = dist.version
    return "".join(f"{name}=={version}\n" for name, version in sorted(pins.items()))


@dataclass
class PackageStatus:
    """One line of the panel's package information."""

    name: str
    required: str
    installed: str | None
    ok: bool
    via: str  # who installs it: "PyTorch Utils", "pip", "Slicer"


@dataclass
class DependencyReport:
    installed: list[str] = field(default_factory=list)  # what was installed by this call
    already_satisfied: bool = False


class DependencyManager:
    """Checks and installs what the engine process needs; :meth:`ensure` is called when a run starts.

    ``confirm(title, text, details) -> bool`` asks the user once for everything that is missing.
    ``torch_installer`` is None when the PyTorch extension is not installed.
    """

    def __init__(self, packaging: Packaging, torch_installer: TorchInstaller | None,
                 confirm: Callable[[str, str, str], bool], requirements_file: Path = REQUIREMENTS_FILE):
        self.packaging = packaging
        self.torch_installer = torch_installer
        self.confirm = confirm
        self.requirements_file = Path(requirements_file)

    def requirements(self) -> list[Requirement]:
        return load_requirements(self.requirements_file)

    def _torch_state(self) -> str:
        """"ok", "missing" or "old"."""
        installed = self.torch_installer.torchInstalled() if self.torch_installer is not None else \
            installed_version("torch") is not None
        if not installed:
            return "missing"
        return "ok" if self.packaging.check(Requirement(f"torch{TORCH_REQUIREMENT}")) else "old"

    def missing_packages(self) -> list[str]:
        """Requirements (as text) that are not satisfied, torch first."""
        torch = self._torch_state()
        missing = [] if torch == "ok" else [f"torch{TORCH_REQUIREMENT} and torchvision{TORCHVISION_REQUIREMENT}"]
        return missing + [str(r) for r in self.requirements() if not self.packaging.check(r)]

    def package_report(self) -> list[PackageStatus]:
        """Every package MoME needs, with the version installed (the panel's "Package information")."""
        rows = []
        for name, spec in (("torch", TORCH_REQUIREMENT), ("torchvision", TORCHVISION_REQUIREMENT)):
            requirement = Requirement(name + spec)
            rows.append(PackageStatus(name, spec, installed_version(name), self.packaging.check(requirement),
                                      "PyTorch Utils"))
        for requirement in self.requirements():
            rows.append(PackageStatus(requirement.name, str(requirement.specifier), installed_version(requirement.name),
                                      self.packaging.check(requirement), "pip"))
        return rows

    def ensure(self) -> DependencyReport:
        """Install whatever is missing after one confirmation. Raises :class:`DependencyDeclined`, or
        :class:`DependencyError` with what to do when anything fails (a failed PyTorch install, pip,
        a missing PyTorch extension): never another exception, so the panel always stays usable."""
        torch = self._torch_state()
        if torch == "old":
            raise DependencyError(
                f"MoME needs PyTorch {TORCH_REQUIREMENT.lstrip('>=')} or newer. Open the PyTorch Utils module, "
                "uninstall PyTorch, restart Slicer, and start MoME again to install a current version.",
                f"installed torch {installed_version('torch')}",
            )
        if torch == "missing" and self.torch_installer is None:
            raise DependencyError(
                "MoME needs the PyTorch extension. Install 'PyTorch' from the Extensions Manager, restart "
                "Slicer, and start MoME again.",
                "import PyTorchUtils failed",
            )
        missing = [r for r in self.requirements() if not self.packaging.check(r)]
        if torch == "ok" and not missing:
            return DependencyReport(already_satisfied=True)

        names = (["torch", "torchvision"] if torch == "missing" else []) + [str(r) for r in missing]
        text = ("MoME needs these Python packages, which are not installed in Slicer yet:\n\n  "
                + "\n  ".join(names)
                + "\n\nThey are downloaded from the Python package index (PyTorch alone is about 1–3 GB) "
                  "and installed into Slicer's Python. This may take several minutes. Install now?")
        details = ("PyTorch is installed by the PyTorch extension (PyTorch Utils), matching your GPU driver. "
                   f"The others are installed by pip from {self.requirements_file.name}, keeping every package "
                   "that Slicer itself ships at the version Slicer has.")
        if not self.confirm("Install MoME's Python packages?", text, details):
            raise DependencyDeclined("MoME's Python packages were not installed, so MoME cannot run yet. "
                                     "Start again when you are ready to install them.")
        report = DependencyReport()
        if torch == "missing":
            self._install_torch()
            report.installed += ["torch", "torchvision"]
        if missing:
            self._pip_install(missing)
            report.installed += [str(r) for r in missing]
        still = self.missing_packages()
        if still:
            raise DependencyError(
                "Some of MoME's Python packages are still missing after the installation. Restart Slicer and "
                "try again; 'Package information' in the MoME Segmentation module lists what is installed.",
                "still missing: " + ", ".join(still),
            )
        logging.getLogger("MoME").info("Installed for MoME: %s", ", ".join(report.installed))
        return report

    def reinstall(self) -> list[str]:
        """Install MoME's pip requirements again, e.g. after a broken or interrupted install (the
        panel's "Reinstall packages"). PyTorch is reinstalled in PyTorch Utils (uninstall, restart,
        install), which MoME never does on its own."""
        requirements = self.requirements()
        self._pip_install(requirements, reinstall=True)
        return [str(r) for r in requirements]

    def _install_torch(self) -> None:
        assert self.torch_installer is not None
        try:
            torch = self.torch_installer.installTorch(
                askConfirmation=False,
                torchVersionRequirement=TORCH_REQUIREMENT,
                torchvisionVersionRequirement=TORCHVISION_REQUIREMENT,
            )
        except Exception as exc:  # noqa: BLE001 - PyTorchUtils raises whatever pip or light-the-torch raised
            raise DependencyError(
                "PyTorch could not be installed. Check the internet connection (or proxy), then open the "
                "PyTorch Utils module: uninstall PyTorch, restart Slicer, and install it there (choose the "
                "computation backend if the automatic choice fails). Then start MoME again.",
                f"PyTorchUtilsLogic.installTorch failed: {type(exc).__name__}: {exc}",
            ) from exc
        if torch is None:
            raise DependencyError("PyTorch was not installed. Open the PyTorch Utils module to install it, "
                                  "restart Slicer, and start MoME again.")

    def _pip_install(self, requirements: list[Requirement], reinstall: bool = False) -> None:
        handle, constraints = tempfile.mkstemp(prefix="mome-constraints-", suffix=".txt")
        try:
            with os.fdopen(handle, "w", encoding="utf-8") as f:
                f.write(keep_installed_constraints())
            self.packaging.install(requirements, Path(constraints), reinstall)
        except Exception as exc:  # noqa: BLE001 - pip failures come as CalledProcessError, RuntimeError, ...
            raise DependencyError(
                "Installing MoME's Python packages failed. Check the internet connection (or proxy) and try "
                "again; the details show pip's message. Packages that Slicer ships are never replaced, so a "
                "conflict with one of them is reported here instead.",
                f"{type(exc).__name__}: {exc}",
            ) from exc
        finally:
            os.unlink(constraints)
