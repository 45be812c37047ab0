"""The local model store: installed model packages, one folder per version, and the active model.

Layout under the root (default ``<MOME_HOME>/models``)::

    <name>/<version>/     an installed package folder (model.json, weights, SHA256SUMS.json)
    state.json            the active model and the earlier ones (for rollback), see state.py

Packages are never modified once installed: a fine-tuned model is a new version, switching models
only rewrites ``state.json``, and rollback re-activates an earlier version. Every package enters
the store through :meth:`ModelStore.install`, which verifies it, so the store holds only packages
that passed their checksums. New folders appear by an atomic rename, never half-copied.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
import uuid
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..io.atomic import atomic_write
from ..package import PackageFormatError, PackageIntegrityError, verify_manifest
from ..package.manifest import MANIFEST_NAME
from ..package.files import MODEL_JSON
from .errors import ModelNotFoundError, StoreError
from .naming import check_component, version_key
from .paths import default_models_dir
from .state import Ref, StoreState
from .verify import unpack_zip

log = logging.getLogger("mome.hub")


@dataclass
class InstalledModel:
    """What the store knows about one installed version (read from its model.json; no weights)."""

    name: str
    version: str
    path: Path
    active: bool = False
    description: str = ""
    classes: tuple[str, ...] = ()
    metrics: dict[str, Any] = field(default_factory=dict)
    base_model: str | None = None  # provenance["base_model"] of fine-tuned models

    @property
    def spec(self) -> str:
        return f"{self.name}@{self.version}"


class ModelStore:
    def __init__(self, root: str | Path | None = None):
        self.root = Path(root).expanduser() if root is not None else default_models_dir()

    # ------------------------------------------------------------------ queries
    def installed(self) -> list[InstalledModel]:
        """Every installed version, sorted by name and then version (oldest first)."""
        active = self._state().active
        models = []
        for folder in self._version_folders():
            try:
                models.append(_describe(folder, active))
            except (OSError, ValueError, KeyError, TypeError) as exc:
                log.warning("skipping %s: its model.json is unreadable (%s)", folder, exc)
        return sorted(models, key=lambda m: (m.name, version_key(m.version)))

    def active(self) -> InstalledModel | None:
        """The active model, or None when none was activated (or its folder has gone)."""
        ref = self._state().active
        if ref is None or not self._has(ref):
            return None
        return _describe(self._folder(ref), ref)

    def path(self, name: str, version: str | None = None) -> Path:
        """Folder of ``name`` at ``version``; with no version, the active one if it is this model,
        else the newest installed version. ``ModelNotFoundError`` when not installed."""
        if version is not None:
            if self._has((name, version)):
                return self._folder((name, version))
            versions = self._versions(name)
            also = f"; installed versions: {', '.join(versions)}" if versions else ""
            raise ModelNotFoundError(f"model {name}@{version} is not installed in {self.root}{also}")
        active = self._state().active
        if active is not None and active[0] == name and self._has(active):
            return self._folder(active)
        versions = self._versions(name)
        if not versions:
            raise ModelNotFoundError(f"model {name} is not installed in {self.root}")
        return self._folder((name, versions[-1]))

    def get(self, name: str, version: str | None = None) -> InstalledModel:
        """Like :meth:`path`, described."""
        return _describe(self.path(name, version), self._state().active)

    # ------------------------------------------------------------------ changes
    def install(self, source: str | Path, activate: bool = False) -> InstalledModel:
        """Copy the package folder or .zip at ``source`` into the store, after verifying it.

        The copy is staged inside the store and loaded with ``ModelPackage.load`` (manifest
        checksums, format, weights) before it is moved into place, so what gets installed is
        exactly what was checked, and a tampered or truncated package is refused. Re-installing
        an identical package is a no-op (and repairs a damaged installed copy); a different
        package under an installed name and version is refused: versions are immutable.
        """
        source = Path(source).expanduser()
        if not source.exists():
            raise FileNotFoundError(f"{source} does not exist; give a model package folder or .zip")
        self.root.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=self.root, prefix=".staging-") as tmp:
            if source.is_dir():
                staged = Path(tmp) / "package"
                shutil.copytree(source, staged)
            elif zipfile.is_zipfile(source):
                staged = unpack_zip(source, Path(tmp) / "package")
            else:
                raise PackageFormatError(f"{source} is neither a model package folder nor a .zip of one")
            from ..package.package import ModelPackage  # torch: only when installing

            try:
                info = ModelPackage.load(staged).info
            except (PackageIntegrityError, PackageFormatError) as exc:
                # Name the user's file, not the staging copy the check ran on.
                raise type(exc)(str(exc).replace(str(staged), str(source))) from exc
            ref = (check_component(info.name, "model name"), check_component(info.version, "model version"))
            if "@" in ref[0]:
                raise PackageFormatError(f"model name {ref[0]!r} must not contain '@'")
            self._place(staged, ref)
        if activate:
            return self.activate(*ref)
        return _describe(self._folder(ref), self._state().active)

    def activate(self, name: str, version: str) -> InstalledModel:
        """Make ``name@version`` the active model (the default when no model is named)."""
        ref = (name, version)
        self.path(name, version)  # must be installed
        state = self._state()
        if state.active != ref:
            if state.active is not None:
                state.history.append(state.active)
            state.active = ref
            state.write(self.root)
        return _describe(self._folder(ref), ref)

    def rollback(self) -> InstalledModel:
        """Re-activate the model that was active before the current one (an undo of activate)."""
        state = self._state()
        while state.history:
            ref = state.history.pop()
            if self._has(ref) and ref != state.active:
                state.active = ref
                state.write(self.root)
                return _describe(self._folder(ref), ref)
        now = f"; {state.active[0]}@{state.active[1]} stays active" if state.active else ""
        raise StoreError(f"there is no earlier active model to roll back to{now}")

    def remove(self, name: str, version: str) -> None:
        """Delete an installed version; the active model is refused (activate another first)."""
        ref = (name, version)
        folder = self.path(name, version)
        state = self._state()
        if state.active == ref:
            raise StoreError(
                f"{name}@{version} is the active model; activate another one (`mome models activate NAME@VERSION`) "
                "or roll back (`mome models rollback`) before removing it"
            )
        # Rename first so that no half-deleted package is ever visible under its name.
        trash = self.root / f".removing-{uuid.uuid4().hex[:8]}"
        os.replace(folder, trash)
        shutil.rmtree(trash, ignore_errors=True)
        if not any(folder.parent.iterdir()):
            folder.parent.rmdir()
        if ref in state.history:
            state.history = [h for h in state.history if h != ref]
            state.write(self.root)

    def export(self, name: str, version: str, dest_zip: str | Path, overwrite: bool = False) -> Path:
        """Write the installed ``name@version`` as a .zip that ``install`` (on any machine) accepts.
        The package is verified first, so a damaged copy is never passed on."""
        dest = Path(dest_zip).expanduser()
        if dest.suffix.lower() != ".zip":
            raise ValueError(f"export to a .zip file, not {dest}")
        if dest.exists() and not overwrite:
            raise FileExistsError(f"{dest} already exists; choose another name or remove it")
        folder = self.path(name, version)
        verify_manifest(folder)
        with atomic_write(dest) as tmp, zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as zf:
            for file in sorted(p for p in folder.rglob("*") if p.is_file()):
                zf.write(file, file.relative_to(folder).as_posix())
        return dest

    # ------------------------------------------------------------------ internals
    def _state(self) -> StoreState:
        return StoreState.read(self.root)

    def _folder(self, ref: Ref) -> Path:
        return self.root / ref[0] / ref[1]

    def _has(self, ref: Ref) -> bool:
        return (self._folder(ref) / MODEL_JSON).is_file()

    def _version_folders(self) -> list[Path]:
        if not self.root.is_dir():
            return []
        return [
            version
            for name in self.root.iterdir() if name.is_dir() and not name.name.startswith(".")
            for version in name.iterdir() if (version / MODEL_JSON).is_file()
        ]

    def _versions(self, name: str) -> list[str]:
        folder = self.root / name
        if not folder.is_dir():
            return []
        return sorted((v.name for v in folder.iterdir() if (v / MODEL_JSON).is_file()), key=version_key)

    def _place(self, staged: Path, ref: Ref) -> None:
        """Move a verified staged package to its folder, unless the same package is already there."""
        target = self._folder(ref)
        if target.exists():
            if _manifest(target) != _manifest(staged):
                raise FileExistsError(
                    f"a different package {ref[0]}@{ref[1]} is already installed; installed versions never "
                    f"change: give the new package another version, or remove the old one first "
                    f"(`mome models remove {ref[0]}@{ref[1]}`)"
                )
            try:
                verify_manifest(target)
                return  # identical and intact: nothing to do
            except PackageIntegrityError:
                log.warning("replacing the damaged installed copy of %s@%s", *ref)
                trash = self.root / f".removing-{uuid.uuid4().hex[:8]}"
                os.replace(target, trash)
                shutil.rmtree(trash, ignore_errors=True)
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(staged, target)


def _manifest(folder: Path) -> dict[str, str] | None:
    try:
        return json.loads((folder / MANIFEST_NAME).read_text())
    except (OSError, ValueError):
        return None


def _describe(folder: Path, active: Ref | None) -> InstalledModel:
    meta = json.loads((folder / MODEL_JSON).read_text(encoding="utf-8"))
    ref = (folder.parent.name, folder.name)
    provenance = meta.get("provenance") or {}
    return InstalledModel(
        name=ref[0],
        version=ref[1],
        path=folder,
        active=ref == active,
        description=meta.get("description", ""),
        classes=tuple(c["key"] for c in meta.get("classes", [])),
        metrics=meta.get("metrics") or {},
        base_model=provenance.get("base_model"),
    )
