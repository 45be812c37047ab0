"""``mome evaluate --model M --data MANIFEST``: per-class Dice, NSD and HD95 as JSON."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ._common import add_progress_argument, run_reporting_errors


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("evaluate", help="evaluate a model on the held-out cases of a manifest")
    p.add_argument("--model", default=None, help="model name or package path (default: the active model)")
    p.add_argument("--data", required=True, help="dataset manifest (YAML/JSON)")
    p.add_argument("--split", default="val", choices=["train", "val", "test"])
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    p.add_argument("--nsd-tolerance", type=float, default=2.0, help="surface Dice tolerance in mm")
    p.add_argument("--out", help="write the metrics JSON here (default: stdout)")
    add_progress_argument(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    def job(progress):
        from ..hub import resolve_model
        from ..io import atomic_write
        from ..package import ModelPackage
        from ..training.evaluate import evaluate_package
        from ..training.manifest import load_manifest

        package = ModelPackage.load(resolve_model(args.model))
        result = evaluate_package(package, load_manifest(args.data), args.split, args.device, args.nsd_tolerance,
                                  progress)
        text = json.dumps(result, indent=2)
        if args.out:
            with atomic_write(Path(args.out)) as tmp:
                Path(tmp).write_text(text + "\n")
        else:
            print(text)
        progress.done(metrics=args.out or "stdout", mean_dice=result["mean_dice"])
        return 0

    return run_reporting_errors(job, args.progress)
