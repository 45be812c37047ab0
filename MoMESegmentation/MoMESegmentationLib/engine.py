"""Which MoME engine runs: exactly one, the one shipped with this extension, in the panel and in the
background process alike.

The extension ships the engine's source: its build installs the ``mome`` package and the engine's
``Resources/`` next to the scripted modules (``qt-scripted-modules/``, top-level ``CMakeLists.txt``);
a source checkout added as a module path has them at the repository root. Slicer *appends* module
folders to ``sys.path``, so a ``mome`` that someone pip-installed into Slicer's Python would win
in the panel while the background process (which gets the bundled engine first on
``PYTHONPATH``) ran the bundled one: two versions at once. :func:`use_bundled_engine` puts the
bundled engine first in this process too, and drops an already imported foreign ``mome``.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

from .errors import FriendlyError

LIB_DIR = Path(__file__).resolve().parent


class EngineMissingError(FriendlyError):
    """The engine files are not where the extension installs them."""


def find_engine_root(start: Path = LIB_DIR) -> Path | None:
    """The folder that contains the ``mome`` package shipped with this extension.

    Installed extension: ``qt-scripted-modules/`` (next to ``MoMESegmentationLib``). Source checkout
    added as a module path: the repository root (two levels up).
    """
    for candidate in (start.parent, start.parent.parent):
        if (candidate / "mome" / "__init__.py").is_file():
            return candidate
    return None


def use_bundled_engine(root: Path | None = None) -> Path:
    """Make ``import mome`` load the bundled engine in this process; returns its root folder."""
    root = root or find_engine_root()
    if root is None:
        raise EngineMissingError(
            "The MoME engine files are missing from this Slicer installation. Reinstall the MoME "
            "extension from the Extensions Manager.",
            f"looked for mome/__init__.py next to {LIB_DIR}",
        )
    root_text = str(root)
    sys.path[:] = [root_text] + [p for p in sys.path if p != root_text]
    loaded = sys.modules.get("mome")
    if loaded is not None and not _is_within(Path(getattr(loaded, "__file__", "") or ""), root):
        for name in [n for n in sys.modules if n == "mome" or n.startswith("mome.")]:
            del sys.modules[name]
    return root


@dataclass(frozen=True)
class EngineInfo:
    """What the panel's About / Details says about the engine."""

    version: str
    location: Path
    bundled: bool

    def describe(self) -> str:
        where = "shipped with this extension" if self.bundled else "NOT the one shipped with this extension"
        return (f"MoME engine {self.version} ({where}), from {self.location}. The panel and the background "
                "process both run this engine.")


def engine_info(root: Path) -> EngineInfo:
    import mome

    location = Path(mome.__file__).resolve().parent
    return EngineInfo(mome.__version__, location, _is_within(location, root))


def _is_within(path: Path, root: Path) -> bool:
    try:
        return path.resolve().is_relative_to(Path(root).resolve())
    except (OSError, ValueError):
        return False
