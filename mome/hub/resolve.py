"""What a model name on the command line (or in Slicer) means: the package to load.

Order, first match wins:

1. an existing path (package folder or .zip);
2. no name at all → the store's active model, else :data:`DEFAULT_MODEL`;
3. ``NAME`` / ``NAME@VERSION`` installed in the store (no version: the active version of that
   model, else its newest);
4. a package bundled with MoME (``Resources/Models/NAME`` folder or .zip, or the registry's
   ``bundled`` path), of that version when one is given;
5. otherwise ``ModelNotFoundError``: if the registry knows the model, the message gives the exact
   download command with its size and URL; if not, it lists what is installed and known.

Resolving never downloads anything: that needs the user's explicit ``mome models download``.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from ..package import read_package_json
from ..resource_files import resources_dir
from .errors import ModelNotFoundError
from .naming import format_spec, parse_spec, version_key
from .registry import RegistryEntry, find_entry, load_registry
from .store import ModelStore

#: The model a run uses when none is named and none is active: the one bundled with MoME.
DEFAULT_MODEL = "mome-mini"


def resolve_model(spec: str | os.PathLike[str] | None = None, store: ModelStore | None = None,
                  registry: list[RegistryEntry] | None = None) -> Path:
    """The package folder or .zip that ``spec`` names (see the module docstring for the order)."""
    store = store or ModelStore()
    if spec is None:
        active = store.active()
        if active is not None:
            return active.path
        spec = DEFAULT_MODEL
    path = Path(spec).expanduser()
    if path.exists():
        return path
    text = str(spec)
    if any(sep in text for sep in ("/", "\\")) or text.lower().endswith(".zip"):
        raise ModelNotFoundError(f"model package {path} does not exist")
    name, version = parse_spec(text)
    try:
        return store.path(name, version)
    except ModelNotFoundError:
        pass
    entries = load_registry() if registry is None else registry
    bundled = bundled_path(name, version, entries)
    if bundled is not None:
        return bundled
    raise ModelNotFoundError(_not_found_message(name, version, store, entries))


def bundled_path(name: str, version: str | None = None, registry: Sequence[RegistryEntry] = ()) -> Path | None:
    """The package of ``name`` (at ``version``, if given) shipped under ``Resources/``, if present."""
    root = resources_dir()
    # Newest version first: several versions of one model may ship (the default and the one it replaced).
    entries = sorted((e for e in registry if e.name == name and e.bundled), key=lambda e: version_key(e.version),
                     reverse=True)
    candidates = [root / e.bundled for e in entries]
    candidates += [root / "Models" / name, root / "Models" / f"{name}.zip"]
    for candidate in candidates:
        if candidate.exists() and (version is None or _package_version(candidate) == version):
            return candidate
    return None


def _package_version(path: Path) -> str | None:
    try:
        return read_package_json(path).get("version")
    except (OSError, ValueError, KeyError, StopIteration):
        return None


def _not_found_message(name: str, version: str | None, store: ModelStore,
                       registry: Sequence[RegistryEntry]) -> str:
    spec = format_spec(name, version)
    entry = find_entry(registry, name, version)
    if entry is not None and entry.downloadable:
        return f"model {spec} is not installed; run: {entry.download_hint()}"
    if entry is not None:
        return (f"model {entry.spec} should be bundled with MoME, but {resources_dir() / str(entry.bundled)} is "
                "missing; reinstall MoME, or import the package (`mome models import FILE`)")
    installed = [m.spec for m in store.installed()]
    known = sorted({e.spec if version else e.name for e in registry})
    return (
        f"unknown model {spec!r}. Installed: {', '.join(installed) or 'none'}. "
        f"Known to the registry: {', '.join(known) or 'none'}. "
        "Give a package folder or .zip instead, or see `mome models list`"
    )
