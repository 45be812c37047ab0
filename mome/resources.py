"""Locate files under the repository's ``Resources/`` folder (shared with the Slicer extension).

Installed wheels carry the folder as the ``mome.resources`` package; an editable install or a plain
checkout (the Slicer extension bundles the source tree) finds it next to the ``mome`` package.
"""

from __future__ import annotations

from pathlib import Path


def resources_dir() -> Path:
    checkout = Path(__file__).resolve().parent.parent / "Resources"
    if checkout.is_dir():
        return checkout
    import importlib.resources

    return Path(str(importlib.resources.files("mome.resources")))


def resource_path(*parts: str) -> Path:
    path = resources_dir().joinpath(*parts)
    if not path.exists():
        raise FileNotFoundError(
            f"MoME resource {'/'.join(parts)!r} is missing from {resources_dir()}; "
            "reinstall MoME (`pip install -e .`) or restore the Resources/ folder"
        )
    return path
