"""``mome train CONFIG``: train a model from a YAML/JSON config (see recipes/)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ._common import add_progress_argument, run_reporting_errors

DESCRIPTION = """\
Train a MoME model from a config file (model size, dataset manifest, optimiser; see recipes/). The
result is a model package in the config's output folder; import it with 'mome models import'. Runs
in one process or under torchrun (DDP, one node or several). Every problem of the manifest is reported
at once before anything trains; checkpoints are written as it goes, and Ctrl-C or SIGTERM saves one
(under torchrun every rank stops after the same step; continue with --resume). TensorBoard event
files go to OUTPUT/tensorboard (tensorboard --logdir OUTPUT/tensorboard)."""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train a model from a config file (single process or torchrun)",
                       description=DESCRIPTION, epilog="example: mome train recipes/mome-mini/config.yaml")
    p.add_argument("config", help="training config (YAML/JSON), e.g. recipes/mome-mini/config.yaml")
    p.add_argument("--resume", action="store_true",
                   help="continue an interrupted run from the checkpoint in the output folder")
    p.add_argument("--output", help="override the config's output folder")
    p.add_argument("--steps", type=int, help="override the config's number of optimisation steps")
    p.add_argument("--device", choices=["auto", "cpu", "cuda"], help="override the config's device")
    p.add_argument("--prepare-only", metavar="FOLDER",
                   help="resample the cases and embed the class names into FOLDER, then stop (no training)")
    p.add_argument("--prepared", metavar="FOLDER",
                   help="train from a --prepare-only FOLDER (needs neither the images nor a text encoder)")
    p.add_argument("--no-tensorboard", action="store_true",
                   help="write no TensorBoard event files (default: the config's 'tensorboard', true: "
                        "OUTPUT/tensorboard, view with `tensorboard --logdir OUTPUT/tensorboard`)")
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
        if args.no_tensorboard:
            cfg.tensorboard = False
        if args.prepare_only:
            return _prepare(cfg, args.prepare_only, progress)
        return _train(cfg, args.resume, progress)

    return run_reporting_errors(job, args.progress, "mome train")


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


def _install(store, path):
    try:
        return store.install(path)
    except (OSError, ValueError) as exc:
        raise ValueError(f"the new package is in {path}, but installing it into {store.root} failed ({exc}); "
                         f"install it later with `mome models import {path}`") from exc


def _train(cfg, resume: bool, progress, install_into=None) -> int:
    """Train; with ``install_into`` (a ``ModelStore``), install the new package there, not active."""
    from ..training.trainer import Trainer

    result = Trainer(cfg, progress=progress).run(resume=resume)
    if result.package_path is not None:
        installed = _install(install_into, result.package_path) if install_into is not None else None
        summary = {"package": str(result.package_path), "validation_dice": result.best_metrics}
        if installed is not None:
            summary["installed"] = installed.spec
        progress.done(**summary, steps=result.steps)
        if not hasattr(progress, "stream"):
            print(json.dumps(summary, indent=2))
            if installed is not None:
                print(f"Installed {installed.spec} (not active): `mome models list` shows it; use it with "
                      f"--model {installed.spec}, or make it the default with `mome models activate {installed.spec}`")
    return 0
