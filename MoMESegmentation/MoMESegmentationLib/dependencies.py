"""What MoME needs in Slicer's Python, and installing it — only when Segment is clicked, with consent.

**How the engine gets into Slicer.** The extension ships the engine's source: the build installs
the ``mome`` package and its ``Resources/`` (vocabulary, terminology, model manifest) next to the
scripted modules (``lib/Slicer-X.Y/qt-scripted-modules/``, see the top-level ``CMakeLists.txt``).
That folder is on Slicer's ``sys.path``, so the panel can ``import mome.vocabulary`` (pure Python)
with nothing installed, and the background process gets it first on ``PYTHONPATH``
(:func:`find_engine_root`). We chose this over ``pip install``-ing the bundled source tree because
it needs no build step and no network, works offline, and the engine is always exactly the version
the extension was built with (no stale copy left in site-packages after an extension update).

**Third-party packages** are installed into Slicer's Python on first use, after one confirmation
listing them all:

* ``torch``/``torchvision`` through the PyTorch extension's ``PyTorchUtilsLogic.installTorch``,
  which picks the wheel matching the GPU driver (never plain pip: that would bring a CPU-only or
  mismatched CUDA build);
* everything else from ``Resources/requirements.txt`` with ``slicer.packaging.pip_ensure``, with
  ``skip_packages`` so pip never replaces what Slicer itself ships (SimpleITK with Slicer's own IO,
  numpy, vtk, requests) and never pulls torch from PyPI behind PyTorchUtils' back.

The Slicer objects (``slicer.packaging``, ``PyTorchUtilsLogic``, a confirmation dialog) are injected,
so this module imports neither Slicer nor Qt and is tested with stand-ins.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from .errors import FriendlyError

LIB_DIR = Path(__file__).resolve().parent
REQUIREMENTS_FILE = LIB_DIR.parent / "Resources" / "requirements.txt"

#: Installed through PyTorchUtils, never through pip_ensure (same minimums as pyproject.toml).
TORCH_REQUIREMENT = ">=2.4"
TORCHVISION_REQUIREMENT = ">=0.19"
#: Slicer ships these (SimpleITK with Slicer's own IO); pip must not replace them as a dependency
#: of something else. torch/torchvision belong to PyTorchUtils.
SKIP_PACKAGES = ("SimpleITK", "numpy", "vtk", "requests", "torch", "torchvision")
REQUESTER = "MoME"


class DependencyError(FriendlyError):
    """A dependency is missing and cannot be installed from here; the message says what to do."""


class DependencyDeclined(DependencyError):
    """The user chose not to install the packages MoME needs."""


class PackagingBackend(Protocol):
    """The part of ``slicer.packaging`` (Slicer >= 5.12) used here."""

    def load_requirements(self, path: str | Path) -> list[Any]: ...

    def pip_check(self, req: Any) -> bool: ...

    def pip_ensure(self, requirements: Any, constraints: Any = None, skip_packages: list[str] | None = None,
                   prompt_install: bool = True, prompt_restart: bool = True, requester: str | None = None,
                   skip_in_testing: bool = True, show_progress: bool = True) -> Any: ...


class TorchInstaller(Protocol):
    """The part of the PyTorch extension's ``PyTorchUtilsLogic`` used here."""

    def torchInstalled(self) -> bool: ...  # noqa: N802 - Slicer's names

    def installTorch(self, askConfirmation: bool = False, forceComputationBackend: str | None = None,  # noqa: N802,N803
                     torchVersionRequirement: str | None = None,  # noqa: N803
                     torchvisionVersionRequirement: str | None = None) -> Any: ...  # noqa: N803


# --------------------------------------------------------------------------------------------------
# The engine
# --------------------------------------------------------------------------------------------------


def find_engine_root(start: Path = LIB_DIR) -> Path | None:
    """The folder that contains the ``mome`` package shipped with this extension.

    Installed extension: ``qt-scripted-modules/`` (next to ``MoMESegmentationLib``). Source checkout
    added as a module path: the repository root (two levels up).
    """
    for candidate in (start.parent, start.parent.parent):
        if (candidate / "mome" / "__init__.py").is_file():
            return candidate
    return None


def ensure_engine_importable(root: Path | None = None) -> Path:
    """Make ``import mome`` work in this process (for the vocabulary and model list); returns the root."""
    root = root or find_engine_root()
    if root is None:
        raise DependencyError(
            "The MoME engine files are missing from this Slicer installation. Reinstall the MoME "
            "extension from the Extensions Manager.",
            f"looked for mome/__init__.py next to {LIB_DIR}",
        )
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
    return root


# --------------------------------------------------------------------------------------------------
# Third-party packages
# --------------------------------------------------------------------------------------------------


@dataclass
class DependencyReport:
    installed: list[str] = field(default_factory=list)  # what was installed by this call
    already_satisfied: bool = False


class DependencyManager:
    """Checks and installs what the engine process needs; call :meth:`ensure` when Segment is clicked.

    ``confirm(title, text, details) -> bool`` asks the user once for everything that is missing.
    ``torch_installer`` is None when the PyTorch extension is not installed.
    """

    def __init__(self, packaging: PackagingBackend, torch_installer: TorchInstaller | None,
                 confirm: Callable[[str, str, str], bool],
                 requirements_file: Path = REQUIREMENTS_FILE, skip_packages: Sequence[str] = SKIP_PACKAGES):
        self.packaging = packaging
        self.torch_installer = torch_installer
        self.confirm = confirm
        self.requirements_file = Path(requirements_file)
        self.skip_packages = list(skip_packages)

    def requirements(self) -> list[Any]:
        return list(self.packaging.load_requirements(self.requirements_file))

    def missing_packages(self) -> list[str]:
        """Requirements (as text) that are not satisfied, torch first."""
        missing = []
        if self.torch_installer is None or not self.torch_installer.torchInstalled():
            missing.append(f"torch{TORCH_REQUIREMENT} and torchvision{TORCHVISION_REQUIREMENT} (via PyTorch Utils)")
        elif not self.packaging.pip_check(f"torch{TORCH_REQUIREMENT}"):
            missing.append(f"torch{TORCH_REQUIREMENT} (installed version is too old)")
        missing += [str(r) for r in self.requirements() if not self.packaging.pip_check(r)]
        return missing

    def ensure(self) -> DependencyReport:
        """Install whatever is missing after one confirmation. Raises :class:`DependencyDeclined` or
        :class:`DependencyError` (cannot be installed from here). ``pip_ensure`` itself offers a restart
        when an already imported package was updated; the engine runs in a fresh process anyway."""
        if self.torch_installer is None:
            raise DependencyError(
                "MoME needs the PyTorch extension. Install 'PyTorch' from the Extensions Manager, restart "
                "Slicer, and click Segment again.",
                "import PyTorchUtils failed",
            )
        torch_missing = not self.torch_installer.torchInstalled()
        if not torch_missing and not self.packaging.pip_check(f"torch{TORCH_REQUIREMENT}"):
            raise DependencyError(
                f"MoME needs PyTorch {TORCH_REQUIREMENT.lstrip('>=')} or newer. Open the PyTorch Utils module, "
                "uninstall PyTorch, restart Slicer, and click Segment again to install a current version.",
            )
        missing_reqs = [r for r in self.requirements() if not self.packaging.pip_check(r)]
        if not torch_missing and not missing_reqs:
            return DependencyReport(already_satisfied=True)

        names = (["torch", "torchvision"] if torch_missing else []) + [str(r) for r in missing_reqs]
        text = ("MoME needs these Python packages, which are not installed in Slicer yet:\n\n  "
                + "\n  ".join(names)
                + "\n\nThey are downloaded from the Python package index (PyTorch alone is about 1–3 GB) "
                  "and installed into Slicer's Python. This may take several minutes. Install now?")
        details = (f"PyTorch is installed by the PyTorch extension (PyTorchUtils), matching your GPU driver.\n"
                   f"Other packages: pip install of {self.requirements_file.name}, without replacing "
                   f"{', '.join(p for p in self.skip_packages if p not in ('torch', 'torchvision'))} that Slicer provides.")
        if not self.confirm("Install MoME's Python packages?", text, details):
            raise DependencyDeclined(
                "MoME's Python packages were not installed, so it cannot segment yet. Click Segment again "
                "when you are ready to install them."
            )
        report = DependencyReport()
        if torch_missing:
            torch = self.torch_installer.installTorch(
                askConfirmation=False,
                torchVersionRequirement=TORCH_REQUIREMENT,
                torchvisionVersionRequirement=TORCHVISION_REQUIREMENT,
            )
            if torch is None:
                raise DependencyError("PyTorch could not be installed. Open the PyTorch Utils module to install "
                                      "it, restart Slicer, and click Segment again.")
            report.installed += ["torch", "torchvision"]
        if missing_reqs:
            try:
                self.packaging.pip_ensure(missing_reqs, skip_packages=self.skip_packages, prompt_install=False,
                                          prompt_restart=True, requester=REQUESTER)
            except Exception as exc:  # noqa: BLE001 - pip failures come in many types
                raise DependencyError(
                    "Installing MoME's Python packages failed. Check the internet connection (or proxy) and "
                    "try again; the details below show pip's message.",
                    f"{type(exc).__name__}: {exc}",
                ) from exc
            report.installed += [str(r) for r in missing_reqs]
        logging.getLogger("MoME").info("Installed for MoME: %s", ", ".join(report.installed))
        return report
