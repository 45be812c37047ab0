"""Helpers shared by the subcommands: progress flag and user-facing error reporting."""

from __future__ import annotations

import argparse
import sys
import traceback
from typing import Callable

from ..progress import Progress, make_progress

# Errors that are the user's to fix: shown as one clear line, exit code 2. Anything else is a bug
# and keeps its traceback.
USER_ERRORS: tuple[type[BaseException], ...] = (ValueError, FileNotFoundError, FileExistsError, PermissionError)


def _user_errors() -> tuple[type[BaseException], ...]:
    from ..package import PackageIntegrityError
    from ..text import TextEncoderUnavailableError

    return (*USER_ERRORS, PackageIntegrityError, TextEncoderUnavailableError)


def add_progress_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--progress", choices=["auto", "bar", "json", "none"], default="auto",
                        help="progress display; 'json' prints one JSON object per line (for the Slicer modules)")


def run_reporting_errors(job: Callable[[Progress], int], progress_mode: str) -> int:
    progress = make_progress(progress_mode)
    try:
        return job(progress)
    except _user_errors() as exc:
        progress.error(str(exc), traceback.format_exc())
        if progress_mode != "json":
            print(f"mome: error: {exc}", file=sys.stderr)
        return 2
