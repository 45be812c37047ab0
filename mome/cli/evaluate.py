"""``mome evaluate --model M --data MANIFEST``: per-class Dice, NSD and HD95 as JSON."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ._common import add_progress_argument, run_reporting_errors

DESCRIPTION = """\
Measure a model on the labelled cases of one split of a dataset manifest: per class Dice, normalised
surface Dice (NSD) and the 95th-percentile Hausdorff distance, on the model's grid, as JSON. Every
problem of the manifest (missing files, unknown classes, mismatched grids) is reported at once before
anything runs. Figures count as held-out evidence only on patients the model never saw; record them
in a package with 'mome models add-evidence'."""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("evaluate", help="measure a model on the labelled cases of a manifest (Dice, NSD, HD95)",
                       description=DESCRIPTION,
                       epilog="example: mome evaluate --model mome-mini --data my-cases.yaml --split test --out m.json")
    p.add_argument("--model", default=None, help="model name or package path (default: the active model)")
    p.add_argument("--data", required=True, help="dataset manifest (YAML/JSON)")
    p.add_argument("--split", default="val", choices=["train", "val", "test"],
                   help="which cases of the manifest to evaluate (their 'split' field; default: val)")
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"], help="compute device (default: cpu)")
    p.add_argument("--nsd-tolerance", type=float, default=2.0, help="surface Dice tolerance in mm (default: 2)")
    p.add_argument("--overlap", type=float, default=None,
                   help="sliding-window overlap in [0, 1) (default 0.25, as 'mome segment --fast'; its full mode uses 0.5)")
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

        from ..inference.sliding import FAST_OVERLAP

        overlap = FAST_OVERLAP if args.overlap is None else args.overlap
        if not 0 <= overlap < 1:
            raise ValueError(f"--overlap must be in [0, 1), got {overlap}")
        manifest = load_manifest(args.data)
        package = ModelPackage.load(resolve_model(args.model))
        result = evaluate_package(package, manifest, args.split, args.device, args.nsd_tolerance, progress,
                                  overlap=overlap)
        text = json.dumps(result, indent=2, allow_nan=False)  # valid JSON: a missing distance is null
        if args.out:
            with atomic_write(Path(args.out)) as tmp:
                Path(tmp).write_text(text + "\n")
        else:
            print(text)
        progress.done(metrics=args.out or "stdout", mean_dice=result["mean_dice"])
        return 0

    return run_reporting_errors(job, args.progress, "mome evaluate")
