"""Locate the files of ``Resources/`` (vocabulary, terminology, model manifest, bundled model, samples).

The folder is shared with the Slicer extension, so it has three homes:

* a source checkout or an editable install: ``Resources/`` next to the ``mome`` package;
* the Slicer extension: the same, inside ``qt-scripted-modules/`` (top-level ``CMakeLists.txt``);
* a wheel (``pip install .``): the package data ``mome/resources/`` (``pyproject.toml`` maps
  ``Resources/`` onto the ``mome.resources`` package).

This module is deliberately *not* called ``mome/resources.py``: a module of that name shadows the
``mome.resources`` package of the wheel, and ``importlib.resources.files("mome.resources")`` then
fails with "not a package" (``Testing/test_packaging.py`` installs the wheel to check it).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

_PACKAGE_DIR = Path(__file__).resolve().parent


def resources_dir() -> Path:
    for candidate in (_PACKAGE_DIR / "resources", _PACKAGE_DIR.parent / "Resources"):
        if (candidate / "Vocabulary").is_dir():
            return candidate
    raise FileNotFoundError(
        f"MoME's resource files are missing: neither {_PACKAGE_DIR / 'resources'} (installed package) nor "
        f"{_PACKAGE_DIR.parent / 'Resources'} (source checkout) exists; reinstall MoME (`pip install .`)"
    )


def resource_path(*parts: str) -> Path:
    path = resources_dir().joinpath(*parts)
    if not path.exists():
        raise FileNotFoundError(
            f"MoME resource {'/'.join(parts)!r} is missing from {resources_dir()}; "
            "reinstall MoME (`pip install .`) or restore the Resources/ folder"
        )
    return path


@dataclass(frozen=True)
class Sample:
    """A CT shipped with MoME to try it on (``Resources/Samples/samples.json``)."""

    name: str
    path: Path
    title: str
    description: str
    license: str
    source: str
    sha256: str


def samples() -> list[Sample]:
    folder = resource_path("Samples")
    entries = json.loads((folder / "samples.json").read_text(encoding="utf-8"))["samples"]
    return [Sample(e["name"], folder / e["file"], e["title"], e["description"], e["license"], e["source"],
                   e["sha256"]) for e in entries]


def sample(name: str) -> Sample:
    """The sample called ``name``; a ``KeyError`` names the ones there are."""
    found = {s.name: s for s in samples()}
    if name not in found:
        raise KeyError(f"no sample named {name!r}; samples: {', '.join(found) or 'none'} (`mome sample --list`)")
    if not found[name].path.is_file():
        raise FileNotFoundError(f"the sample file {found[name].path} is missing; reinstall MoME")
    return found[name]
