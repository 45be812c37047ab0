"""``mome finetune --model M --data MANIFEST``: adapt a model to the user's own labelled cases."""

from __future__ import annotations

import argparse

from ._common import add_progress_argument, run_reporting_errors
from .train import _train


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("finetune", help="fine-tune a model package on a dataset manifest (new version)")
    p.add_argument("--model", default=None, help="base model name or package path (default: the active model)")
    p.add_argument("--data", required=True, help="dataset manifest (YAML/JSON)")
    p.add_argument("--name", help="name of the new model (default: <base>-ft)")
    p.add_argument("--version", default=None, help="version of the new model (default: base version + 1 minor)")
    p.add_argument("--preset", default="backbone",
                   help="what stays frozen: backbone (= 'quick adapt'), none (= 'full retrain'), "
                        "backbone+experts, heads-only")
    p.add_argument("--classes", help="comma-separated class keys to train (default: all in the manifest); "
                                     "new names become new classes")
    p.add_argument("--steps", type=int, default=200)
    p.add_argument("--lr", type=float, default=5e-4)
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    p.add_argument("--output", default=None, help="output folder (default: runs/<name>)")
    p.add_argument("--resume", action="store_true")
    add_progress_argument(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    def job(progress):
        from ..hub import resolve_model
        from ..package import read_package_json
        from ..training.config import DataSection, OptimSection, TrainConfig

        base_path = resolve_model(args.model)
        base = read_package_json(base_path)
        major, minor, *_ = (base["version"].split(".") + ["0", "0"])[:3]
        name = args.name or f"{base['name']}-ft"
        pre = base["preprocessing"]
        cfg = TrainConfig(
            name=name,
            version=args.version or f"{major}.{int(minor) + 1}.0",
            description=f"fine-tuned from {base['name']} {base['version']}",
            output=args.output or f"runs/{name}",
            device=args.device,
            base_model=str(base_path),
            freeze=args.preset,
            classes=[c.strip() for c in args.classes.split(",")] if args.classes else [],
            data=DataSection(manifest=args.data, spacing=tuple(pre["spacing"]), patch_size=tuple(pre["patch_size"]),
                             hu_window=tuple(pre["hu_window"]), crops_per_case=1, max_classes_per_step=5),
            optim=OptimSection(steps=args.steps, lr=args.lr, warmup_steps=max(1, args.steps // 20)),
            validate_every=max(1, args.steps // 4),
            checkpoint_every=max(1, args.steps // 10),
        )
        return _train(cfg, args.resume, progress)

    return run_reporting_errors(job, args.progress)
