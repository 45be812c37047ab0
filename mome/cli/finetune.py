"""``mome finetune --model M --data MANIFEST``: adapt a model to the user's own labelled cases."""

from __future__ import annotations

import argparse

from ._common import add_progress_argument, run_reporting_errors
from .train import _train

DESCRIPTION = """\
Adapt an installed model to your own labelled CTs (a dataset manifest). The result is a new version
of the model (never written over the base), installed in the model store so that 'mome models list'
shows it; make it the default with 'mome models activate NAME@VERSION'. Every problem of the
manifest is reported at once before anything trains."""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("finetune", help="fine-tune a model on your labelled cases (a new, installed version)",
                       description=DESCRIPTION,
                       epilog="example: mome finetune --model mome-mini --data my-cases.yaml --preset backbone")
    p.add_argument("--model", default=None, help="base model name or package path (default: the active model)")
    p.add_argument("--data", required=True, help="dataset manifest (YAML/JSON)")
    p.add_argument("--name", help="name of the new model (default: <base>-ft)")
    p.add_argument("--version", default=None,
                   help="version of the new model (default: the base version + 1 minor, or the next one not taken)")
    p.add_argument("--preset", default="backbone",
                   help="what stays frozen: backbone (= 'quick adapt'), none (= 'full retrain'), "
                        "backbone+experts, heads-only (default: backbone)")
    p.add_argument("--classes", help="comma-separated class keys to train (default: all in the manifest); "
                                     "new names become new classes")
    p.add_argument("--steps", type=int, default=200, help="optimisation steps (default: 200)")
    p.add_argument("--lr", type=float, default=5e-4, help="peak learning rate after the warm-up (default: 5e-4)")
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"], help="compute device (default: auto)")
    p.add_argument("--output", default=None, help="output folder (default: runs/<name>)")
    p.add_argument("--resume", action="store_true",
                   help="continue an interrupted run from the checkpoint in the output folder")
    add_progress_argument(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    def job(progress):
        from pathlib import Path

        from ..hub import ModelStore, resolve_model
        from ..package import read_package_json
        from ..training.config import DataSection, OptimSection, TrainConfig

        base_path = resolve_model(args.model)
        base = read_package_json(base_path)
        name = args.name or f"{base['name']}-ft"
        output = args.output or f"runs/{name}"
        store = ModelStore()
        if args.version:
            version = args.version
        elif args.resume:  # the version the interrupted run was started with
            version = _checkpoint_version(Path(output)) or _bumped(base["version"])
        else:
            version = _next_version(base["version"], name, Path(output), store)
        pre = base["preprocessing"]
        cfg = TrainConfig(
            name=name,
            version=version,
            description=f"fine-tuned from {base['name']} {base['version']}",
            output=output,
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
        return _train(cfg, args.resume, progress, install_into=store)

    return run_reporting_errors(job, args.progress, "mome finetune")


def _checkpoint_version(output) -> str | None:
    from ..training.checkpoint import CHECKPOINT, load_checkpoint

    if not (output / CHECKPOINT).is_file():
        return None
    return load_checkpoint(output).get("config", {}).get("version")


def _bumped(version: str, minor_step: int = 1) -> str:
    major, minor, *_ = (version.split(".") + ["0", "0"])[:3]
    return f"{major}.{int(minor) + minor_step}.0"


def _next_version(base_version: str, name: str, output, store) -> str:
    """The base version + 1 minor, or the next minor that neither the store nor the output folder
    holds yet: installed versions never change, so a second fine-tune must not reuse a number."""
    taken = {m.version for m in store.installed() if m.name == name}
    step = 1
    while _bumped(base_version, step) in taken or (output / f"{name}-{_bumped(base_version, step)}").exists():
        step += 1
    return _bumped(base_version, step)
