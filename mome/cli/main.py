"""``mome`` command line: one subcommand per module in this package."""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import signal
import sys

from .. import __version__

# Each module defines ``register(subparsers)``; its parser's ``func(args) -> int`` runs the command.
SUBCOMMANDS = ("segment", "classes", "models", "train", "finetune", "evaluate", "data", "sample")
#: Commands whose peak memory must stay bounded keep glibc's default allocator (mome/runtime.py).
BOUNDED_MEMORY_COMMANDS = ("train", "finetune")


def _sigterm_as_interrupt(signum, frame):  # noqa: ARG001
    # SIGTERM (Slicer's Cancel, a scheduler) takes the same clean path as Ctrl-C.
    raise KeyboardInterrupt


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mome", description="Text-prompted CT segmentation (MoME)")
    parser.add_argument("--version", action="version", version=f"mome {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in SUBCOMMANDS:
        importlib.import_module(f"mome.cli.{name}").register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    from ..runtime import prefer_passive_waiting, tune_allocator

    prefer_passive_waiting()  # before torch loads: idle threads sleep instead of spinning (mome/runtime.py)
    args = build_parser().parse_args(argv)
    if args.command not in BOUNDED_MEMORY_COMMANDS:
        tune_allocator()  # ~2× faster CPU inference, for a higher peak (mome/runtime.py)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, format="%(levelname)s %(message)s")
    signal.signal(signal.SIGTERM, _sigterm_as_interrupt)
    if hasattr(signal, "SIGBREAK"):  # Windows: what the Slicer modules send to stop a run
        signal.signal(signal.SIGBREAK, _sigterm_as_interrupt)
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("mome: cancelled; no partial output was left behind", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader went away (`mome classes | head`): stop quietly, as other command-line tools do.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141


if __name__ == "__main__":
    sys.exit(main())
