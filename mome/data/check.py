"""``mome data check``: what a manifest holds and everything wrong with it, in one report.

Problems are those ``validate_manifest`` finds before a training run (missing or unreadable files,
label grids that do not match their image, label values missing from a ``label_map``, classes
outside the vocabulary); on top of them the report counts cases per class and split, gives each
dataset's sampling probability, and lists the labels an import could not map to any class.
"""

from __future__ import annotations

from typing import Any

from ..training.data import validate_manifest
from ..training.manifest import SPLITS, Manifest
from ..vocabulary import Vocabulary


def check_manifest(manifest: Manifest, vocabulary: Vocabulary) -> dict[str, Any]:
    training = [d for d in manifest.datasets if any(c.split == "train" for c in d.cases)]
    total = sum(d.weight for d in training)
    datasets = []
    for d in manifest.datasets:
        datasets.append({
            "name": d.name,
            "weight": d.weight,
            "sampling_probability": round(d.weight / total, 4) if d in training and total else 0.0,
            "cases": {s: sum(c.split == s for c in d.cases) for s in SPLITS},
            "classes": list(dict.fromkeys(k for c in d.cases for k in c.classes)),
            "unmapped": d.unmapped_labels(),
        })
    counts = {k: {s: 0 for s in SPLITS} for k in manifest.classes}
    for case in manifest.cases():
        for key in case.classes:
            counts[key][case.split] += 1
    return {
        "manifest": str(manifest.source) if manifest.source else None,
        "datasets": datasets,
        "class_case_counts": counts,
        "problems": validate_manifest(manifest, vocabulary),
    }


def format_report(report: dict[str, Any]) -> str:
    lines = [f"manifest {report['manifest']}", "", "datasets (weight → probability a step samples it; cases per split):"]
    for d in report["datasets"]:
        cases = ", ".join(f"{n} {s}" for s, n in d["cases"].items() if n)
        lines.append(f"  {d['name']}: weight {d['weight']:g} → {d['sampling_probability']:.1%}; {cases}; "
                     f"{len(d['classes'])} classes")
    lines += ["", "cases per class (train / val / test):"]
    width = max((len(k) for k in report["class_case_counts"]), default=0)
    for key, n in sorted(report["class_case_counts"].items(), key=lambda kv: (-kv[1]["train"], kv[0])):
        lines.append(f"  {key:<{width}}  {n['train']:>5} / {n['val']:>4} / {n['test']:>4}")
    unmapped = [(d["name"], d["unmapped"]) for d in report["datasets"] if d["unmapped"]]
    lines += ["", "unmapped labels (in the source, reaching no class; map them with `mome data import --map`):"]
    lines += [f"  {name}: {', '.join(items)}" for name, items in unmapped] or ["  none"]
    problems = report["problems"]
    lines += ["", f"problems ({len(problems)}):"] + ([f"  - {p}" for p in problems] or ["  none"])
    return "\n".join(lines)
