"""``mome classes``: list the structures MoME knows, marking those the model was trained on.

Only the model's ``model.json`` is read (no weights), so listing is instant even for large models.
Without ``--model`` the default model is used for the marks when it is installed.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("classes", help="list the structures that can be segmented",
                              description=__doc__.split("\n\n")[0])
    p.add_argument("--json", action="store_true", help="machine-readable output (a JSON list)")
    p.add_argument("--model", default=None, help="mark the classes this model (name or package path) was trained on")
    p.set_defaults(func=run)


def _model_classes(model: str | None) -> tuple[dict[str, Any] | None, str]:
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
    from ..vocabulary import classes_as_json, format_classes_table, load_vocabulary

    vocabulary = load_vocabulary()
    try:
        meta, why = _model_classes(args.model)
    except (ModelNotFoundError, OSError, ValueError, KeyError, StopIteration) as exc:
        print(f"mome classes: error: cannot read model {args.model}: {exc}", file=sys.stderr)
        return 2
    trained = {c["key"]: c for c in meta["classes"]} if meta else {}
    extra = [c for key, c in trained.items() if key not in vocabulary]

    if args.json:
        rows = json.loads(classes_as_json(vocabulary))
        if meta:
            for row in rows:
                row["trained"] = row["key"] in trained
            rows += [{**c, "trained": True, "vocabulary": False} for c in extra]
        print(json.dumps(rows, indent=2, ensure_ascii=False))
        return 0

    lines = format_classes_table(vocabulary).splitlines()
    if meta:
        # One table line per vocabulary class after the header and its rule, in vocabulary order.
        marks = ["T", "-"] + ["*" if c.key in trained else " " for c in vocabulary]
        lines = [f"{mark}  {line}" for mark, line in zip(marks, lines)]
    print("\n".join(lines))
    if meta:
        name = f"{meta.get('name')} {meta.get('version')}"
        print(f"\n* = trained in model {name} ({len(trained)} classes).", end=" ")
        if meta.get("text", {}).get("allows_free_text", True):
            print("Other structures are segmented zero-shot from their name (expect poorer results).")
        else:
            print("This model segments only its trained classes.")
        for c in extra:
            print(f"  also trained (not in the vocabulary): {c['key']} ({c['name']})")
    elif why:
        print(f"\n({why})", file=sys.stderr)
    return 0
