"""Side-by-side results table of two (or more) models from ``mome evaluate --out`` files, as Markdown.

The model card's tables are printed by this script, not typed: per structure, Dice and NSD as
mean ± sd over the patients that have the structure, with n, one column pair per model::

    python recipes/mome-mini-2/report.py "MoME=runs/mome-openkbp-test.json" "Universal=runs/universal-openkbp-test.json"

A structure one model was not evaluated on is shown as "—". The last row is the mean over the
structures both (all) models were evaluated on, so the means compare like with like.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def cell(metrics: dict | None, key: str) -> str:
    """``0.83 ± 0.05`` (sd across patients), or the mean alone where one patient gives no sd."""
    if metrics is None:
        return "—"
    sd = metrics.get(f"{key}_sd")
    return f"{metrics[key]:.2f}" + (f" ± {sd:.2f}" if sd is not None else "")


def table(results: dict[str, dict]) -> str:
    """Markdown table: one row per structure, Dice and NSD per model, n from the first model."""
    names = list(results)
    classes: list[str] = []
    for result in results.values():
        classes += [c for c in result["per_class"] if c not in classes]
    header = ["structure", "n"] + [f"{name} {metric}" for name in names for metric in ("Dice", "NSD")]
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    for key in classes:
        per_model = [results[name]["per_class"].get(key) for name in names]
        n = next((m["cases"] for m in per_model if m is not None), 0)
        cells = [key.replace("_", " "), str(n)]
        for m in per_model:
            cells += [cell(m, "dice"), cell(m, "nsd")]
        lines.append("| " + " | ".join(cells) + " |")
    shared = [k for k in classes if all(k in results[name]["per_class"] for name in names)]
    if shared:
        means = ["**mean**", f"{len(shared)} structures"]
        for name in names:
            pc = results[name]["per_class"]
            means += [f"**{sum(pc[k]['dice'] for k in shared) / len(shared):.2f}**",
                      f"{sum(pc[k]['nsd'] for k in shared) / len(shared):.2f}"]
        lines.append("| " + " | ".join(means) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("results", nargs="+", metavar="LABEL=FILE", help="a column label and a `mome evaluate --out` file")
    args = parser.parse_args(argv)
    results = {}
    for item in args.results:
        label, sep, path = item.partition("=")
        if not sep:
            parser.error(f"{item!r}: give LABEL=FILE")
        results[label] = json.loads(Path(path).read_text(encoding="utf-8"))
    print(table(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
