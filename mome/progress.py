"""Progress reporting shared by inference and training.

``--progress bar`` draws a tqdm bar on a terminal; ``--progress json`` writes one JSON object per
line to stdout — ``{"event": "progress", "stage": ..., "fraction": 0..1, "message": ...}`` plus any
extra fields — which is what the Slicer modules read from the background process. Final results
are ``{"event": "done", ...}`` and failures ``{"event": "error", "message": ..., "details": ...}`` plus
any structured fields of the failure (e.g. ``input_check`` or ``refused`` from ``mome segment``).
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any, Protocol, TextIO


class Progress(Protocol):
    def update(self, stage: str, fraction: float, message: str = "", **extra: Any) -> None: ...

    def done(self, **result: Any) -> None: ...

    def error(self, message: str, details: str = "", **fields: Any) -> None: ...


class NullProgress:
    def update(self, stage: str, fraction: float, message: str = "", **extra: Any) -> None:
        pass

    def done(self, **result: Any) -> None:
        pass

    def error(self, message: str, details: str = "", **fields: Any) -> None:
        pass


class JsonLinesProgress:
    def __init__(self, stream: TextIO | None = None):
        self.stream = stream or sys.stdout
        self.start = time.monotonic()

    def _emit(self, obj: dict[str, Any]) -> None:
        obj["elapsed_s"] = round(time.monotonic() - self.start, 3)
        self.stream.write(json.dumps(obj, default=str) + "\n")
        self.stream.flush()

    def update(self, stage: str, fraction: float, message: str = "", **extra: Any) -> None:
        fraction = min(1.0, max(0.0, float(fraction)))
        self._emit({"event": "progress", "stage": stage, "fraction": round(fraction, 4), "message": message, **extra})

    def done(self, **result: Any) -> None:
        self._emit({"event": "done", **result})

    def error(self, message: str, details: str = "", **fields: Any) -> None:
        self._emit({"event": "error", "message": message, "details": details, **fields})


class BarProgress:
    """A single tqdm bar on stderr whose description follows the stage."""

    def __init__(self, stream: TextIO | None = None):
        from tqdm import tqdm

        self.bar = tqdm(total=1000, file=stream or sys.stderr, bar_format="{desc} {percentage:3.0f}%|{bar}| {elapsed}")

    def update(self, stage: str, fraction: float, message: str = "", **extra: Any) -> None:
        self.bar.set_description_str(f"{stage}: {message}" if message else stage, refresh=False)
        self.bar.n = int(1000 * min(1.0, max(0.0, fraction)))
        self.bar.refresh()

    def done(self, **result: Any) -> None:
        self.bar.n = 1000
        self.bar.close()

    def error(self, message: str, details: str = "", **fields: Any) -> None:
        self.bar.close()


def make_progress(mode: str) -> Progress:
    """``auto`` = a bar on an interactive terminal, nothing otherwise."""
    if mode == "json":
        return JsonLinesProgress()
    if mode == "bar" or (mode == "auto" and sys.stderr.isatty()):
        return BarProgress()
    return NullProgress()
