"""What a model package knows about its own accuracy, per class, and what that makes each class.

``model.json`` carries an ``evidence`` list. Each entry is one *study*: one evaluation of one model
version on one body of data, e.g. the output of one ``mome evaluate`` run::

    "evidence": [
      {"kind": "held_out",            # held_out | same_patient | training (see KINDS)
       "model_version": "1.1.0",      # the version that was measured
       "data": "ircad_1.1: 3D-IRCADb-01 patient 1.1",
       "metric": "dice",
       "source": "mome evaluate --model mome-mini --data eval-ircad.yaml --split test",
       "grid": "3 mm model grid",     # optional
       "classes": {"liver": {"value": 0.655, "n": 1}, "spleen": {"value": 0.0, "n": 1}}}
    ]

``n`` is the number of cases (patients, for ``held_out``) behind the value. A class no study of
the package's own version mentions is *not validated*. Studies of other versions (a package's
history, e.g. the held-out slab of the stage it was fine-tuned from) are kept and shown but never
decide a status.

The status of a class comes from the most trustworthy kind of study that measured it (held_out,
then same_patient, then training), as the n-weighted mean of that kind's values:

* ``not_learned``  — Dice < 0.10: the model does not find it (refused by default, see
  :mod:`mome.inference.reliability`);
* ``weak``         — 0.10 ≤ Dice < 0.70;
* ``validated``    — Dice ≥ 0.70 on patients never seen in training;
* ``not_validated``— Dice ≥ 0.70 only on data the model saw (or a part of a training patient), or
  no figure at all.

Nothing here imports torch: ``mome classes``, ``mome models evidence`` and the Slicer panel read it
from ``model.json`` alone.
"""

from __future__ import annotations

import json
import math
import textwrap
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .files import MODEL_JSON, PackageFormatError

#: Kinds of study, most trustworthy first, with how a sentence names the data.
KINDS = {
    "held_out": "patients never seen in training",
    "same_patient": "an unseen part of a training patient",
    "training": "its own training data",
}
STATUSES = ("validated", "weak", "not_validated", "not_learned")
#: How people read a status (CLI, outputs, README).
STATUS_LABELS = {"validated": "validated", "weak": "weak", "not_validated": "not validated",
                 "not_learned": "not learned"}
NOT_LEARNED_BELOW = 0.10
GOOD_FROM = 0.70
METRIC = "dice"


@dataclass(frozen=True)
class Study:
    """One evaluation of one model version: per class, (value, n)."""

    kind: str
    model_version: str
    data: str
    classes: Mapping[str, tuple[float, int]]
    metric: str = METRIC
    source: str = ""
    grid: str = ""

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": self.kind, "model_version": self.model_version, "data": self.data,
                               "metric": self.metric, "source": self.source}
        if self.grid:
            out["grid"] = self.grid
        out["classes"] = {k: {"value": round(v, 3), "n": n} for k, (v, n) in self.classes.items()}
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "Study":
        where = f"evidence entry {data.get('data', '?')!r}"
        kind = data.get("kind")
        if kind not in KINDS:
            raise PackageFormatError(f"{where}: kind must be one of {', '.join(KINDS)}, not {kind!r}")
        if data.get("metric", METRIC) != METRIC:
            raise PackageFormatError(f"{where}: only the metric {METRIC!r} is understood")
        classes: dict[str, tuple[float, int]] = {}
        for key, entry in (data.get("classes") or {}).items():
            try:
                value, n = float(entry["value"]), int(entry["n"])
            except (KeyError, TypeError, ValueError) as exc:
                raise PackageFormatError(f"{where}: class {key!r} needs a numeric value and a case count n") from exc
            if not (0.0 <= value <= 1.0) or n < 1:
                raise PackageFormatError(f"{where}: class {key!r} has Dice {value} (must be 0..1) over n={n} (≥ 1)")
            classes[key] = (value, n)
        if not data.get("model_version") or not data.get("data"):
            raise PackageFormatError(f"{where}: model_version and data (what was measured) are required")
        return cls(kind=kind, model_version=str(data["model_version"]), data=str(data["data"]), classes=classes,
                   metric=METRIC, source=str(data.get("source", "")), grid=str(data.get("grid", "")))


@dataclass(frozen=True)
class Measurement:
    """One class's figure in one study."""

    value: float
    n: int
    study: Study

    def describe(self) -> str:
        """E.g. "Dice 0.66 on 1 patient never seen in training (ircad_1.1)"."""
        if self.study.kind == "held_out":
            where = f"{self.n} patient{'s' if self.n > 1 else ''} never seen in training"
        else:
            where = KINDS[self.study.kind] + (f", {self.n} cases" if self.n > 1 else "")
        return f"Dice {self.value:.2f} on {where} ({self.study.data})"


@dataclass(frozen=True)
class ClassStatus:
    """A class's status, one line saying why, and the figures it rests on."""

    key: str
    status: str
    reason: str
    measurements: tuple[Measurement, ...] = field(default_factory=tuple)
    # The figure that decided the status: the n-weighted mean Dice of the most trustworthy kind.
    value: float | None = None
    kind: str | None = None
    n: int = 0

    @property
    def label(self) -> str:
        return STATUS_LABELS[self.status]

    def to_dict(self) -> dict[str, Any]:
        return {"status": self.status, "status_label": self.label, "evidence": self.reason}


def read_evidence(meta: Mapping[str, Any]) -> list[Study]:
    """The studies in a ``model.json`` dict (``PackageFormatError`` when one is malformed)."""
    raw = meta.get("evidence") or []
    if not isinstance(raw, list):
        raise PackageFormatError("model.json 'evidence' must be a list of studies")
    return [Study.from_dict(entry) for entry in raw]


def class_status(key: str, studies: Iterable[Study], version: str) -> ClassStatus:
    """The status of class ``key`` for model version ``version`` (see the module docstring)."""
    own = [Measurement(*s.classes[key], s) for s in studies if s.model_version == version and key in s.classes]
    for kind in KINDS:
        of_kind = [m for m in own if m.study.kind == kind]
        if not of_kind:
            continue
        n = sum(m.n for m in of_kind)
        # Compared as shown (two decimals), so a "0.10" is never called below 0.10.
        value = round(sum(m.value * m.n for m in of_kind) / n, 2)
        basis = "; ".join(m.describe() for m in of_kind)
        if value < NOT_LEARNED_BELOW:
            status = "not_learned"
        elif value < GOOD_FROM:
            status = "weak"
        elif kind == "held_out":
            status = "validated"
        else:
            status, basis = "not_validated", f"never tested on a new patient; {basis}"
        return ClassStatus(key, status, basis, tuple(own), value, kind, n)
    return ClassStatus(key, "not_validated", f"no accuracy figure for version {version}", ())


def class_statuses(meta: Mapping[str, Any]) -> dict[str, ClassStatus]:
    """Status of every class of the package described by ``meta`` (its ``model.json``), in order."""
    studies = read_evidence(meta)
    version = str(meta.get("version", ""))
    return {c["key"]: class_status(c["key"], studies, version) for c in meta.get("classes", [])}


# ------------------------------------------------------------------------------------ summary
#: The README's words for each status, in the order it lists them.
SUMMARY_HEADINGS = {
    "validated": f"Validated (Dice ≥ {GOOD_FROM:.2f} on patients never seen in training)",
    "weak": f"Weak (Dice {NOT_LEARNED_BELOW:.2f}–{GOOD_FROM:.2f}; segmented, marked weak in the outputs)",
    "not_validated": "Not validated (no figure on a new patient; segmented)",
    "not_learned": f"Not learned (Dice < {NOT_LEARNED_BELOW:.2f}; refused unless `--allow-not-learned`)",
}
_SHORT_KIND = {"held_out": "held out", "same_patient": "same patient", "training": "on training data"}


def summary_markdown(meta: Mapping[str, Any]) -> str:
    """The README's "what this model segments" list, generated from the package's evidence."""
    statuses = class_statuses(meta)
    names = {c["key"]: c.get("name", c["key"]) for c in meta.get("classes", [])}
    lines = [textwrap.fill(f"What {meta.get('name')} {meta.get('version')} can be trusted with, from the Dice "
                           "figures in its package (`mome classes` shows the same per structure):", width=100), ""]
    for status, heading in SUMMARY_HEADINGS.items():
        items = []
        for key, found in statuses.items():
            if found.status != status:
                continue
            if found.value is None:
                items.append(f"{names[key]} (no figure)")
            else:
                n = f", n={found.n}" if found.kind == "held_out" else ""
                items.append(f"{names[key]} ({found.value:.2f} {_SHORT_KIND[found.kind or 'training']}{n})")
        lines.append(textwrap.fill(f"- **{heading}:** {', '.join(items) if items else 'none'}.", width=100,
                                   subsequent_indent="  ", break_on_hyphens=False))
    return "\n".join(lines)


# ------------------------------------------------------------------------------------ writing
def study_from_evaluation(evaluation: Mapping[str, Any], kind: str, data: str, source: str = "") -> Study:
    """A study from the JSON ``mome evaluate`` writes (``per_class`` Dice and case counts)."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {', '.join(KINDS)}, not {kind!r}")
    model = str(evaluation.get("model", "")).split()
    if len(model) != 2 or "per_class" not in evaluation:
        raise ValueError("this is not the output of `mome evaluate` (it needs 'model' and 'per_class')")
    classes = {}
    for key, metrics in evaluation["per_class"].items():
        value = metrics.get("dice")
        if value is None or not math.isfinite(float(value)):
            continue
        classes[key] = (float(value), int(metrics.get("cases") or metrics.get("n") or 1))
    if not classes:
        raise ValueError("the evaluation holds no per-class Dice to record")
    spacing = (evaluation.get("grid") or {}).get("spacing_mm")
    grid = f"{'×'.join(f'{s:g}' for s in spacing)} mm model grid" if spacing else ""
    if not source and evaluation.get("split"):
        source = f"mome evaluate (split {evaluation['split']})"
    return Study(kind=kind, model_version=model[1], data=data, classes=classes, source=source, grid=grid)


def add_study(meta: dict[str, Any], study: Study, cases: Iterable[str] = ()) -> dict[str, Any]:
    """``meta`` with ``study`` added; a study of the same kind, data and version is replaced.

    A study of another version is accepted (a package's history) but never decides a status.
    ``cases`` (``dataset/id`` of the evaluated cases) must not be training cases of a held-out study.
    """
    known = {c["key"] for c in meta.get("classes", [])}
    unknown = sorted(set(study.classes) - known)
    if unknown:
        raise ValueError(f"the study measures classes the model does not have: {', '.join(unknown)}")
    if study.kind == "held_out":
        trained = set(((meta.get("provenance") or {}).get("dataset") or {}).get("train_cases") or [])
        seen = sorted(trained & set(cases))
        if seen:
            raise ValueError(f"{', '.join(seen)} are training cases of this model, so the study is not held out; "
                             "record it with kind 'training'")
    kept = [s for s in read_evidence(meta)
            if (s.kind, s.data, s.model_version) != (study.kind, study.data, study.model_version)]
    return {**meta, "evidence": [s.to_dict() for s in [*kept, study]]}


def write_evidence(folder: str | Path, study: Study, cases: Iterable[str] = ()) -> Path:
    """Add ``study`` to the package folder's model.json and renew its SHA-256 manifest."""
    from ..io.atomic import atomic_write
    from .files import WEIGHTS
    from .manifest import verify_manifest, write_manifest

    folder = Path(folder)
    verify_manifest(folder)  # never re-sign a package that was already damaged
    meta = json.loads((folder / MODEL_JSON).read_text(encoding="utf-8"))
    updated = add_study(meta, study, cases)
    with atomic_write(folder / MODEL_JSON) as tmp:
        tmp.write_text(json.dumps(updated, indent=2) + "\n", encoding="utf-8")  # as ModelPackage.save writes it
    write_manifest(folder, [MODEL_JSON, WEIGHTS])
    return folder / MODEL_JSON
