"""Helpers shared by the subcommands: the progress flag and user-facing error reporting."""

from __future__ import annotations

import argparse
import sys
import traceback
from typing import Callable

from ..progress import JsonLinesProgress, Progress, make_progress

PROGRESS_CHOICES = ("auto", "bar", "json", "none")

# Errors that are the user's to fix: shown as one clear message, exit code 2. Anything else is a
# bug and keeps its traceback.
USER_ERRORS: tuple[type[BaseException], ...] = (ValueError, FileNotFoundError, FileExistsError, PermissionError)


def _user_errors() -> tuple[type[BaseException], ...]:
    from ..hub.errors import DownloadError  # the network, a proxy, or a file changed on the server
    from ..inference.device import DeviceUnavailableError
    from ..package import PackageIntegrityError
    from ..text import TextEncoderUnavailableError

    return (*USER_ERRORS, PackageIntegrityError, TextEncoderUnavailableError, DeviceUnavailableError, DownloadError)


def description(docstring: str | None) -> str:
    """The first paragraph of a module docstring as ``--help`` shows it: without the reStructuredText
    literal quotes that docstrings use (``mome segment`` → mome segment)."""
    return (docstring or "").split("\n\n")[0].replace("``", "")


def download_consent(yes: bool) -> bool | Callable[[str], bool]:
    """The consent a download gets (``mome.hub.download.agreed``): ``--yes`` agrees; on a terminal
    the user is asked y/N (default no); anywhere else (a script, a pipe) there is none, so nothing
    is downloaded unless asked for explicitly."""
    return True if yes else (_ask if sys.stdin.isatty() else False)


def _ask(question: str) -> bool:
    sys.stderr.write(f"{question} [y/N] ")
    sys.stderr.flush()
    return sys.stdin.readline().strip().lower() in ("y", "yes")


def add_progress_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--progress", choices=PROGRESS_CHOICES, default="auto",
                        help="progress display; 'json' prints one JSON object per line on stdout (for the Slicer "
                             "modules) (default: auto)")


def run_reporting_errors(job: Callable[[Progress], int], progress_mode: str, command: str = "mome",
                         cancelled_message: str | None = None) -> int:
    """Run ``job`` with the progress display of ``progress_mode``; report its failure in one form.

    A user error prints ``<command>: error: <message>`` (JSON: an ``error`` event, with the fields of
    the exception's ``event_fields()`` when it has one) and returns 2.
    In JSON mode a bug becomes an ``internal error`` event with the traceback (exit 1), and Ctrl-C
    an ``error`` event with ``cancelled_message`` when one is given, before it propagates.
    """
    progress = make_progress(progress_mode)
    json_mode = isinstance(progress, JsonLinesProgress)
    try:
        return job(progress)
    except KeyboardInterrupt:
        if json_mode and cancelled_message:
            progress.error(cancelled_message)
        raise
    except Exception as exc:  # noqa: BLE001 - every failure must reach the user in one readable form
        if isinstance(exc, _user_errors()):
            message = str(exc).strip() or type(exc).__name__
            # Structured reasons (a failed input check, refused structures) for the Slicer panel.
            fields = exc.event_fields() if hasattr(exc, "event_fields") else {}
            progress.error(message, traceback.format_exc(), **fields)
            if not json_mode:
                print(f"{command}: error: {message}", file=sys.stderr)
            return 2
        if json_mode:
            progress.error(f"internal error: {exc}", traceback.format_exc())
            return 1
        raise
