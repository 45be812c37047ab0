"""The training panel's view of the model store (``mome.hub.ModelStore``): list the installed
versions, set the active one, roll back, export/import a .zip, install a finished run's package as
a new version, and compare two versions on a held-out case.

Installed versions never change and the base model is never overwritten: a trained package gets
its own name/version (see :meth:`ModelStoreLogic.new_model_version`), and installing a package
under a name and version that is already taken is refused.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np


class ModelStoreProtocol(Protocol):
    """The part of ``mome.hub.ModelStore`` this module uses."""

    def installed(self) -> list[Any]: ...

    def install(self, source: str | Path, activate: bool = False) -> Any: ...

    def activate(self, name: str, version: str) -> Any: ...

    def active(self) -> Any: ...

    def rollback(self) -> Any: ...

    def remove(self, name: str, version: str) -> None: ...

    def export(self, name: str, version: str, dest_zip: str | Path) -> Path: ...

    def path(self, name: str, version: str | None = None) -> Path: ...


@dataclass
class Comparison:
    """Dice per class of two (or more) models on one labelled case, on the case's own grid."""

    case: str
    models: list[str]  # "name@version"
    classes: list[str]  # classes the case annotates and contains
    dice: dict[str, dict[str, float | None]] = field(default_factory=dict)  # model -> class -> Dice (None: unknown)
    seconds: dict[str, float] = field(default_factory=dict)

    def mean(self, model: str) -> float | None:
        values = [v for v in self.dice.get(model, {}).values() if v is not None]
        return float(np.mean(values)) if values else None

    def rows(self) -> list[list[str]]:
        """Table rows for the panel: class, Dice of each model (``-`` where a model lacks the class)."""
        def fmt(v: float | None) -> str:
            return "-" if v is None else f"{v:.3f}"

        rows = [[key, *(fmt(self.dice[m].get(key)) for m in self.models)] for key in self.classes]
        rows.append(["mean", *(fmt(self.mean(m)) for m in self.models)])
        return rows


@dataclass
class BaseModel:
    name: str
    version: str
    active: bool
    installed: bool  # False: bundled with MoME, not in the store

    @property
    def spec(self) -> str:
        return f"{self.name}@{self.version}"

    @property
    def label(self) -> str:
        return f"{self.name} {self.version}" + (" (active)" if self.active else "") + (
            "" if self.installed else " (bundled)")


class ModelStoreLogic:
    """``ModelStoreLogic(store=None)``; ``store`` defaults to ``mome.hub.ModelStore()`` (per-user)."""

    def __init__(self, store: ModelStoreProtocol | None = None, device: str = "cpu"):
        self._store = store
        self.device = device

    @property
    def store(self) -> ModelStoreProtocol:
        if self._store is None:  # created on first use: mome.hub needs torch, which may come later
            from mome.hub import ModelStore

            self._store = ModelStore()
        return self._store

    # ------------------------------------------------------------------ listing and switching
    def models(self) -> list[Any]:
        return list(self.store.installed())

    def active(self) -> Any:
        return self.store.active()

    def set_active(self, name: str, version: str) -> Any:
        return self.store.activate(name, version)

    def rollback(self) -> Any:
        return self.store.rollback()

    def remove(self, name: str, version: str) -> None:
        self.store.remove(name, version)

    def export_zip(self, name: str, version: str, dest_zip: str | Path) -> Path:
        return Path(self.store.export(name, version, dest_zip))

    def import_zip(self, source: str | Path, activate: bool = False) -> Any:
        return self.store.install(source, activate=activate)

    def path(self, name: str, version: str | None = None) -> Path:
        """Installed package folder, or the package bundled with MoME (e.g. the default model)."""
        try:
            return Path(self.store.path(name, version))
        except FileNotFoundError:  # ModelNotFoundError: not installed
            from mome.hub import resolve_model

            return Path(resolve_model(f"{name}@{version}" if version else name, store=self.store))

    def base_models(self) -> list[BaseModel]:
        """What training can start from: every installed version, then the models bundled with MoME
        that are not installed (they are used in place; training never changes them)."""
        out = [BaseModel(m.name, m.version, bool(m.active), installed=True) for m in self.store.installed()]
        try:
            from mome.hub import bundled_path, load_registry
            from mome.package import read_package_json

            entries = load_registry()
            bundled = {bundled_path(e.name, None, entries) for e in entries} - {None}
            metas = [read_package_json(path) for path in sorted(bundled)]
        except Exception:  # noqa: BLE001 - a broken registry or package only hides the bundled models
            metas = []
        have = {(b.name, b.version) for b in out}
        for meta in metas:  # the package's own name and version, which resolve_model checks
            if (meta["name"], meta["version"]) not in have:
                have.add((meta["name"], meta["version"]))
                out.append(BaseModel(meta["name"], meta["version"], False, installed=False))
        return out

    # ------------------------------------------------------------------ new versions
    def new_model_version(self, base_name: str, base_version: str, name: str | None = None) -> tuple[str, str]:
        """Name and version for a model trained from ``base_name@base_version``: ``<base>-ft`` (or
        ``name``) at the base version's next minor, bumped past every version already installed
        under that name, so neither the base nor an earlier run is ever overwritten."""
        name = name or (base_name if base_name.endswith("-ft") else f"{base_name}-ft")
        taken = {m.version for m in self.store.installed() if m.name == name}
        if name == base_name:
            taken.add(base_version)
        major, minor = ([*_numbers(base_version), 0, 0])[:2]
        candidate = f"{major}.{minor + 1}.0"
        while candidate in taken:
            minor += 1
            candidate = f"{major}.{minor + 1}.0"
        return name, candidate

    def install_trained(self, package_path: str | Path, activate: bool = False) -> Any:
        """Install a finished run's package as a new version (``activate``: make it the default).
        A package whose name and version are already installed is refused by the store."""
        return self.store.install(package_path, activate=activate)

    # ------------------------------------------------------------------ comparison
    def compare(self, models: list[tuple[str, str]], manifest: str | Path, case_id: str | None = None,
                progress=None) -> Comparison:
        """Segment one held-out case of ``manifest`` (default: its first ``val`` case) with every
        model, in this process, and report the Dice of each annotated class on the case's grid."""
        import SimpleITK as sitk
        from mome.inference.engine import Segmenter
        from mome.package import ModelPackage
        from mome.training.data import case_masks
        from mome.training.manifest import load_manifest

        loaded = load_manifest(manifest)
        cases = loaded.cases()
        if case_id is None:
            held_out = loaded.cases("val") or loaded.cases("test")
            if not held_out:
                raise ValueError("the dataset has no held-out (val) case to compare on; build it with at least "
                                 "3 cases, or name a case")
            case = held_out[0]
        else:
            matches = [c for c in cases if c.id == case_id]
            if not matches:
                raise ValueError(f"no case {case_id!r} in {manifest}; cases: {', '.join(c.id for c in cases)}")
            case = matches[0]
        image = sitk.ReadImage(str(case.image), sitk.sitkFloat32)
        truth = {k: sitk.GetArrayFromImage(m).astype(bool) for k, m in case_masks(case, image).items()}
        truth = {k: v for k, v in truth.items() if v.any()}
        specs = [f"{n}@{v}" for n, v in models]
        result = Comparison(case=f"{case.dataset}/{case.id}", models=specs, classes=sorted(truth))
        for n, ((name, version), spec) in enumerate(zip(models, specs)):
            if progress is not None:
                progress(n / len(models), f"segmenting {case.id} with {spec}")
            package = ModelPackage.load(self.path(name, version))
            known = [k for k in result.classes if k in package.class_keys]
            dice: dict[str, float | None] = {k: None for k in result.classes}
            if known:
                segmenter = Segmenter(package, device=self.device)
                out = segmenter.segment(image, known)
                for key, mask in zip(out.keys, out.masks):
                    dice[key] = _dice(mask, truth[key])
                result.seconds[spec] = float(out.timings.get("total", 0.0))
            result.dice[spec] = dice
        if progress is not None:
            progress(1.0, "done")
        return result


def _dice(pred: np.ndarray, truth: np.ndarray) -> float:
    denom = int(pred.sum()) + int(truth.sum())
    return float(2.0 * np.logical_and(pred, truth).sum() / denom) if denom else 1.0


def _numbers(version: str) -> list[int]:
    out = []
    for part in version.split("."):
        digits = "".join(ch for ch in part if ch.isdigit())
        if not digits:
            break
        out.append(int(digits))
        if digits != part:
            break
    return out or [0]
