"""Finding the model package that ``--model NAME|PATH`` means."""

from __future__ import annotations

from pathlib import Path

from ..resources import resources_dir
from .errors import ModelNotFoundError

DEFAULT_MODEL = "mome-mini"


def locate_model(name_or_path: str | Path) -> Path:
    """The package folder or .zip for ``name_or_path``.

    An existing path is used as it is. A name goes to the model registry (``mome.hub``) when it is
    installed, and otherwise to the models bundled under ``Resources/Models/<name>`` (folder or .zip).
    """
    path = Path(name_or_path).expanduser()
    if path.exists():
        return path
    try:
        from ..hub import resolve_model  # type: ignore[attr-defined]
    except ImportError:
        resolve_model = None
    if resolve_model is not None:
        return Path(resolve_model(str(name_or_path)))
    bundled = resources_dir() / "Models"
    for candidate in (bundled / str(name_or_path), bundled / f"{name_or_path}.zip"):
        if candidate.exists():
            return candidate
    looks_like_path = any(sep in str(name_or_path) for sep in ("/", "\\")) or path.suffix == ".zip"
    if looks_like_path:
        raise ModelNotFoundError(f"model package {path} does not exist")
    raise ModelNotFoundError(
        f"model {str(name_or_path)!r} is not installed (looked in {bundled}); pass the path of a model "
        "package folder or .zip with --model, or install the model first (`mome models`)"
    )
