"""``mome train CONFIG``: train a model from a YAML/JSON config (see recipes/)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ._common import add_progress_argument, run_reporting_errors


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train a model from a config file (single process or torchrun)")
    p.add_argument("config", help="training config (YAML/JSON), e.g. recipes/mome-mini/config.yaml")
    p.add_argument("--resume", action="store_true", help="continue from the checkpoint in the output folder")
    p.add_argument("--output", help="override the config's output folder")
    p.add_argument("--steps", type=int, help="override the number of optimisation steps")
    p.add_argument("--device", choices=["auto", "cpu", "cuda"], help="override the config's device")
    p.add_argument("--prepare-only", metavar="FOLDER",
                   help="resample the cases and embed the class names into FOLDER, then stop (no training)")
    p.add_argument("--prepared", metavar="FOLDER",
                   help="train from a --prepare-only FOLDER (needs neither the images nor a text encoder)")
    add_progress_argument(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..training.config import TrainConfig

    def job(progress):
        cfg = TrainConfig.load(args.config)
        if args.output:
            cfg.output = args.output
        if args.steps:
            cfg.optim.steps = args.steps
        if args.device:
            cfg.device = args.device
        if args.prepared:
            cfg.data.prepared = args.prepared
        if args.prepare_only:
            return _prepare(cfg, args.prepare_only, progress)
        return _train(cfg, args.resume, progress)

    return run_reporting_errors(job, args.progress)


def _prepare(cfg, folder: str, progress) -> int:
    from ..training.trainer import Trainer

    cfg.device = "cpu"  # preparing needs no accelerator
    if Path(folder).exists():  # before any work, not after it
        raise FileExistsError(f"{folder} already exists; remove it or choose another folder")
    path = Trainer(cfg, progress=progress).prepare_to(folder)
    progress.done(prepared=str(path))
    if not hasattr(progress, "stream"):
        print(f"prepared data written to {path}; train with: mome train CONFIG --prepared {path}")
    return 0


def _train(cfg, resume: bool, progress) -> int:
    from ..training.trainer import Trainer

    result = Trainer(cfg, progress=progress).run(resume=resume)
    if result.package_path is not None:
        progress.done(package=str(result.package_path), validation_dice=result.best_metrics, steps=result.steps)
        if not hasattr(progress, "stream"):
            print(json.dumps({"package": str(result.package_path), "validation_dice": result.best_metrics}, indent=2))
    return 0
