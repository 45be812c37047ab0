"""Where the hub keeps installed models: ``<home>/models`` (``default_home``: ``mome/home.py``)."""

from __future__ import annotations

from pathlib import Path

from ..home import default_home

__all__ = ["default_home", "default_models_dir"]


def default_models_dir() -> Path:
    """The model store's root: ``<home>/models``."""
    return default_home() / "models"
