"""The training panel's view of the model store (``mome.hub.ModelStore``): list the installed
versions, set the active one, roll back, export/import a .zip, install a finished run's package as
a new version, and compare versions on the held-out cases of a dataset.

Comparing runs ``mome evaluate`` once per model in a background process (the runner shared with
MoME Segmentation), never inference inside Slicer's process: a GPU out-of-memory error or a crash
cannot take Slicer down, and the panel stays responsive. Each Dice comes with the number of cases
behind it, and beside it what each model's package records about that structure (its status from
the held-out evidence in ``model.json``, ``mome.package.evidence``, and a trained model's
validation Dice), so a figure on one case is never read as more than it is.

Installed versions never change and the base model is never overwritten: a trained package gets
its own name/version (see :meth:`ModelStoreLogic.new_model_version`), and installing a package
under a name and version that is already taken is refused.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from MoMESegmentationLib.errors import FriendlyError, translate_engine_error
from MoMESegmentationLib.process import EngineEvent, EngineProcess, ProcessRunner, engine_command, engine_environment


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
class Recorded:
    """What a model's package says about one class: status label, the figures behind it."""

    status: str  # "validated", "weak", "not validated", "not learned"
    evidence: str
    training_dice: float | None = None  # validation Dice recorded when the model was trained


@dataclass
class Comparison:
    """Mean Dice per class of two (or more) models on the held-out cases of a dataset (``mome
    evaluate``: on the model's grid), with the number of cases behind each value and what each
    model's package records about the class."""

    case: str  # which cases, in words: "2 held-out (val) cases"
    models: list[str]  # "name@version"
    classes: list[str]  # classes the cases annotate and contain
    dice: dict[str, dict[str, float | None]] = field(default_factory=dict)  # model -> class -> Dice (None: unknown)
    seconds: dict[str, float] = field(default_factory=dict)
    cases: dict[str, dict[str, int]] = field(default_factory=dict)  # model -> class -> cases behind the Dice
    recorded: dict[str, dict[str, Recorded]] = field(default_factory=dict)  # model -> class -> its package's word

    def mean(self, model: str) -> float | None:
        values = [v for v in self.dice.get(model, {}).values() if v is not None]
        return float(np.mean(values)) if values else None

    def headers(self) -> list[str]:
        return ["Class", *(f"{m}: Dice (n)" for m in self.models), *(f"{m}: recorded" for m in self.models)]

    def rows(self) -> list[list[str]]:
        """Table rows for the panel: class, each model's Dice with its case count (``-`` where a
        model lacks the class), then each model's recorded status; a last row with the means."""
        def fmt(value: float | None, n: int | None) -> str:
            if value is None:
                return "-"
            return f"{value:.3f} (n={n})" if n else f"{value:.3f}"

        rows = []
        for key in self.classes:
            dice = [fmt(self.dice[m].get(key), self.cases.get(m, {}).get(key)) for m in self.models]
            recorded = [self._recorded_text(m, key) for m in self.models]
            rows.append([key, *dice, *recorded])
        rows.append(["mean", *(fmt(self.mean(m), None) for m in self.models), *("" for _ in self.models)])
        return rows

    def tooltips(self) -> list[list[str]]:
        """Same shape as :meth:`rows`: the figures behind each recorded status."""
        out = []
        for key in self.classes:
            tips = []
            for m in self.models:
                found = self.recorded.get(m, {}).get(key)
                tip = found.evidence if found else ""
                if found and found.training_dice is not None:
                    tip += f"; validation Dice {found.training_dice:.3f} when it was trained"
                tips.append(tip)
            out.append(["", *("" for _ in self.models), *tips])
        out.append(["" for _ in range(1 + 2 * len(self.models))])
        return out

    def _recorded_text(self, model: str, key: str) -> str:
        found = self.recorded.get(model, {}).get(key)
        if found is None:
            return "-"
        text = found.status
        if found.training_dice is not None:
            text += f"; validation {found.training_dice:.3f} when trained"
        return text


def recorded_evidence(package: str | Path) -> dict[str, Recorded]:
    """What the package's ``model.json`` records per class (empty when it cannot be read)."""
    try:
        from mome.package import read_package_json
        from mome.package.evidence import class_statuses

        meta = read_package_json(package)
        statuses = class_statuses(meta)
    except Exception:  # noqa: BLE001 - a package without readable evidence still compares
        return {}
    trained = ((meta.get("metrics") or {}).get("validation_dice") or {})
    return {key: Recorded(found.label, found.reason,
                          float(trained[key]) if isinstance(trained.get(key), (int, float)) else None)
            for key, found in statuses.items()}


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
    def comparison(self, models: list[tuple[str, str]], manifest: str | Path, split: str = "val",
                   **process_options: Any) -> "ComparisonRun":
        """A background comparison of ``models`` on the ``split`` cases of ``manifest`` (not started)."""
        specs = [(f"{name}@{version}", str(self.path(name, version))) for name, version in models]
        return ComparisonRun(specs, manifest, split=split, device=self.device, **process_options)

    def compare(self, models: list[tuple[str, str]], manifest: str | Path, split: str = "val",
                timeout: float | None = None, **process_options: Any) -> Comparison:
        """:meth:`comparison`, started and waited for (scripts and tests)."""
        run = self.comparison(models, manifest, split, **process_options)
        run.start()
        return run.wait(timeout)


class ComparisonRun:
    """``mome evaluate`` for one model after the other, in the background; :attr:`result` at the end.

    ``models`` are (label, package path); ``poll()`` advances it (from the panel's QTimer), ``wait``
    blocks. ``error`` is a :class:`FriendlyError` when a run failed.
    """

    def __init__(self, models: list[tuple[str, str]], manifest: str | Path, split: str = "val", device: str = "cpu",
                 runner: ProcessRunner | None = None, python: str | None = None,
                 engine_root: str | os.PathLike[str] | None = None, base_env: Mapping[str, str] | None = None):
        self.models = list(models)
        self.manifest = str(manifest)
        self.split = split
        self.device = "cuda" if device == "cuda" else "cpu"  # `mome evaluate` has no "auto"
        self.process = EngineProcess(runner)
        self.command = engine_command(python)
        self.env = engine_environment(os.environ if base_env is None else base_env, engine_root)
        self.work_dir = Path(tempfile.mkdtemp(prefix="MoME-compare-"))
        self.metrics: dict[str, dict] = {}
        self.seconds: dict[str, float] = {}
        self.error: FriendlyError | None = None
        self.result: Comparison | None = None
        self._index = -1

    @property
    def running(self) -> bool:
        return self.result is None and self.error is None and self._index >= 0

    @property
    def fraction(self) -> float:
        return max(0, self._index) / max(1, len(self.models))

    def arguments(self, index: int) -> list[str]:
        _, package = self.models[index]
        return [*self.command, "evaluate", "--model", package, "--data", self.manifest, "--split", self.split,
                "--device", self.device, "--out", str(self._out(index)), "--progress", "json"]

    def start(self) -> None:
        self._start(0)

    def _start(self, index: int) -> None:
        self._index = index
        self.process.start(self.arguments(index), env=self.env, cwd=self.work_dir)

    def _out(self, index: int) -> Path:
        return self.work_dir / f"metrics-{index}.json"

    def poll(self) -> list[EngineEvent]:
        if not self.running:
            return []
        events = self.process.poll()
        if not self.process.running and self.process.exit_code is not None:
            self._finished_one()
        return events

    def _finished_one(self) -> None:
        label, _ = self.models[self._index]
        out = self._out(self._index)
        if self.process.exit_code != 0 or not out.is_file():
            error = self.process.error
            self.error = translate_engine_error(self.process.exit_code, error.message if error else "",
                                                error.details if error else "", list(self.process.log_tail),
                                                missing_output=self.process.exit_code == 0)
            self._clean()
            return
        self.metrics[label] = json.loads(out.read_text(encoding="utf-8"))
        self.seconds[label] = self.process.seconds
        if self._index + 1 < len(self.models):
            self._start(self._index + 1)
        else:
            self.result = self._comparison()
            self._clean()

    def _comparison(self) -> Comparison:
        labels = [label for label, _ in self.models]
        classes = sorted({key for m in self.metrics.values() for key in m.get("per_class", {})})
        cases = max((len(m.get("per_case", [])) for m in self.metrics.values()), default=0)
        dice = {label: {key: (self.metrics[label]["per_class"].get(key) or {}).get("dice") for key in classes}
                for label in labels}
        counts = {label: {key: int((self.metrics[label]["per_class"].get(key) or {}).get("cases") or 0)
                          for key in classes} for label in labels}
        recorded = {label: recorded_evidence(package) for label, package in self.models}
        return Comparison(f"{cases} held-out ({self.split}) case{'s' if cases != 1 else ''}", labels, classes, dice,
                          dict(self.seconds), counts, recorded)

    def wait(self, timeout: float | None = None) -> Comparison:
        """Block until every model was evaluated; raises the :class:`FriendlyError` of a failed run."""
        while self.running:
            if self.process.wait(timeout) is None:
                self.cancel()
                raise FriendlyError(f"The comparison did not finish within {timeout:.0f} s and was stopped.")
            self.poll()
        if self.error is not None:
            raise self.error
        assert self.result is not None
        return self.result

    def cancel(self) -> None:
        self.process.kill()
        self.error = self.error or FriendlyError("The comparison was cancelled.")
        self._clean()

    def _clean(self) -> None:
        shutil.rmtree(self.work_dir, ignore_errors=True)


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
