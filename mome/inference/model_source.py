"""Finding the model package that ``--model NAME|PATH`` means."""

from __future__ import annotations

from pathlib import Path

from ..resource_files import resources_dir
from .errors import ModelNotFoundError

DEFAULT_MODEL = "mome-mini"


def locate_model(name_or_path: str | Path | None = None) -> Path:
    """The package folder or .zip for ``name_or_path``.

    An existing path is used as it is. Anything else goes to the model hub
    (:func:`mome.hub.resolve_model`): ``None`` is the active model (else the default model), a name
    or ``NAME@VERSION`` an installed or bundled model, and a model that is known but not installed
    gets an error giving the download command. Nothing is ever downloaded from here.
    """
    if name_or_path is not None:
        path = Path(name_or_path).expanduser()
        if path.exists():
            return path
    try:
        from ..hub import resolve_model
    except ModuleNotFoundError as exc:
        if exc.name != "mome.hub":
            raise
        # A trimmed build without the hub (and some tests): the bundled models only.
        return _bundled(str(name_or_path or DEFAULT_MODEL))
    return resolve_model(name_or_path)


def _bundled(name_or_path: str) -> Path:
    path = Path(name_or_path).expanduser()
    bundled = resources_dir() / "Models"
    for candidate in (bundled / name_or_path, bundled / f"{name_or_path}.zip"):
        if candidate.exists():
            return candidate
    if any(sep in name_or_path for sep in ("/", "\\")) or path.suffix == ".zip":
        raise ModelNotFoundError(f"model package {path} does not exist")
    raise ModelNotFoundError(
        f"model {name_or_path!r} is not installed (looked in {bundled}); pass the path of a model "
        "package folder or .zip with --model, or install the model first (`mome models`)"
    )
