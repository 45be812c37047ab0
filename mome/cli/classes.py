"""``mome classes``: the structures MoME knows, and how far the model can be trusted with each.

Only the model's ``model.json`` is read (no weights), so listing is instant even for large models.
Without ``--model`` the default model is used when it is installed. The table fits 100 columns;
``--json`` adds the codes, synonyms and figures.
"""

from __future__ import annotations

import argparse
import json
import sys
import textwrap
from typing import Any

from ._common import description

WIDTH = 100
LEGEND = """\
Status of each structure with model {model} (figures: `mome models evidence`):
  validated      Dice >= 0.70 on patients never seen in training
  weak           Dice 0.10-0.70; segmented, marked weak in the outputs
  not validated  no figure on a new patient (e.g. only on its training scans); segmented
  not learned    Dice < 0.10; refused unless --allow-not-learned
  zero-shot      never trained on; refused unless --allow-zero-shot (a guess from the name)"""


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("classes", help="list the structures that can be segmented, and how reliably",
                              description=description(__doc__))
    p.add_argument("--json", action="store_true", help="machine-readable output (a JSON list, with codes and synonyms)")
    p.add_argument("--model", default=None, help="the model (name or package path) whose status to show")
    p.set_defaults(func=run)


def _model_meta(model: str | None) -> tuple[dict[str, Any] | None, str]:
    """model.json of the requested (or default) model, or (None, why) when there is none to use."""
    from ..hub import DEFAULT_MODEL, ModelNotFoundError, resolve_model
    from ..package import read_package_json

    try:
        return read_package_json(resolve_model(model)), ""
    except ModelNotFoundError as exc:
        if model is not None:
            raise
        return None, f"default model {DEFAULT_MODEL} is not installed: {exc}"


def run(args: argparse.Namespace) -> int:
    from ..hub import ModelNotFoundError
    from ..inference.reliability import Structure, assess
    from ..vocabulary import classes_as_json, load_vocabulary

    vocabulary = load_vocabulary()
    try:
        meta, why = _model_meta(args.model)
        if meta is not None:
            assess([], meta)  # reads the evidence: a malformed package fails here, not halfway through
    except (ModelNotFoundError, OSError, ValueError, KeyError, StopIteration) as exc:
        print(f"mome classes: error: cannot read model {args.model or ''}: {exc}", file=sys.stderr)
        return 2
    package_classes = list(meta["classes"]) if meta else []
    extra = [c for c in package_classes if c["key"] not in vocabulary]
    # The model's own classes first (in its order), then every other structure of the vocabulary.
    listed = [Structure(c["key"], c["name"]) for c in package_classes]
    listed += [Structure(c.key, c.name) for c in vocabulary if c.key not in {n.key for n in listed}]
    status = {r.key: r for r in assess(listed, meta)} if meta else {}

    if args.json:
        rows = json.loads(classes_as_json(vocabulary))
        rows += [{**c, "vocabulary": False} for c in extra]
        for row in rows:
            if meta:
                row["trained"] = row["key"] in {c["key"] for c in package_classes}
                row.update(status[row["key"]].to_dict())
        print(json.dumps(rows, indent=2, ensure_ascii=False))
        return 0

    if meta:
        print(LEGEND.format(model=f"{meta.get('name')} {meta.get('version')}"))
        if not (meta.get("text") or {}).get("allows_free_text", True):
            print("  (this model cannot segment structures it was not trained on, even with --allow-zero-shot)")
        print()
    elif why:
        print(f"({why}; no status shown)", file=sys.stderr)
    key_width = max(len(n.key) for n in listed)
    name_width = max(len(n.name) for n in listed)
    print(f"{'key':<{key_width}}  {'name':<{name_width}}  {'status' if meta else ''}".rstrip())
    print(f"{'-' * key_width}  {'-' * name_width}  {'-' * 13 if meta else ''}".rstrip())
    for named in listed:
        label = status[named.key].label if meta else ""
        print(f"{named.key:<{key_width}}  {named.name:<{name_width}}  {label}".rstrip())
    if meta:
        counts: dict[str, int] = {}
        for r in status.values():
            counts[r.label] = counts.get(r.label, 0) + 1
        summary = ", ".join(f"{n} {label}" for label, n in counts.items())
        print("\n" + textwrap.fill(f"{len(listed)} structures: {summary} (codes and synonyms: --json).", WIDTH))
    return 0

