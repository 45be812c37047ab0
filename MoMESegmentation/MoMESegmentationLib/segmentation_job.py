"""One ``mome segment`` run in the background (:mod:`.process`): the request, its progress, its outcome.

The engine writes only what Slicer reads, the ``.seg.nrrd`` (names, colours, terminology and
algorithm tags are in it), into a private work folder that is emptied when a run is cancelled or
fails, so a stopped run leaves nothing behind.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any

from .errors import FriendlyError, translate_engine_error
from .process import EngineEvent, EngineProcess, EventKind, ProcessRunner, engine_command, engine_environment


class JobState(str, Enum):
    CREATED = "created"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


@dataclass
class JobRequest:
    """What to run: the input NRRD, the prompts and the engine options (see ``mome segment --help``)."""

    input_path: Path
    prompts: str
    model: str | None = None  # installed model name[@version] or package path; None = the default
    device: str = "auto"  # auto | cuda | cpu
    fast: bool = False
    allow_not_learned: bool = False
    allow_zero_shot: bool = False
    skip_input_check: bool = False
    extra_args: tuple[str, ...] = ()
    #: The volume's name: the engine's messages name the temporary input file, the user knows this.
    input_label: str = ""


@dataclass
class JobOutcome:
    state: JobState
    segmentation_path: Path | None = None
    result: dict[str, Any] = field(default_factory=dict)  # the "done" event
    error: FriendlyError | None = None
    seconds: float = 0.0


class SegmentationJob:
    """Start, poll, cancel one segmentation; ``outcome`` once it has ended.

    ``engine_root`` (the folder that contains the ``mome`` package) goes first on ``PYTHONPATH``,
    so the process runs exactly the engine shipped with the extension.
    """

    def __init__(self, request: JobRequest, work_dir: str | os.PathLike[str], runner: ProcessRunner | None = None,
                 command: Sequence[str] | None = None, engine_root: str | os.PathLike[str] | None = None,
                 environment: Mapping[str, str] | None = None):
        self.request = request
        self.work_dir = Path(work_dir)
        self.process = EngineProcess(runner)
        self.command = list(command) if command is not None else engine_command()
        self.engine_root = engine_root
        self.environment = dict(environment) if environment is not None else dict(os.environ)
        self.state = JobState.CREATED
        self.fraction = 0.0
        self.stage = ""
        self.message = ""
        self.outcome: JobOutcome | None = None

    @property
    def segmentation_path(self) -> Path:
        return self.work_dir / "result.seg.nrrd"

    def arguments(self) -> list[str]:
        r = self.request
        args = [*self.command, "segment", str(r.input_path), "--prompts", r.prompts,
                "--output", str(self.segmentation_path), "--progress", "json", "--device", r.device]
        if r.model:
            args += ["--model", str(r.model)]
        if r.fast:
            args.append("--fast")
        if r.allow_not_learned:
            args.append("--allow-not-learned")
        if r.allow_zero_shot:
            args.append("--allow-zero-shot")
        if r.skip_input_check:
            args.append("--skip-input-check")
        return args + list(r.extra_args)

    def process_environment(self) -> dict[str, str]:
        return engine_environment(self.environment, self.engine_root)

    # -- lifecycle -----------------------------------------------------------------------------

    def start(self) -> None:
        if self.state is not JobState.CREATED:
            raise RuntimeError("a segmentation job can only be started once")
        self.work_dir.mkdir(parents=True, exist_ok=True)
        self.state = JobState.RUNNING
        self.message = "starting MoME"
        try:
            self.process.start(self.arguments(), env=self.process_environment(), cwd=self.work_dir)
        except OSError as exc:
            self._finish(JobState.FAILED, FriendlyError(
                "MoME could not be started: Slicer's Python interpreter was not found or could not run.",
                f"{type(exc).__name__}: {exc}\ncommand: {self.arguments()}",
            ))
            raise self.outcome.error from exc  # type: ignore[union-attr]

    @property
    def running(self) -> bool:
        return self.state is JobState.RUNNING

    @property
    def elapsed(self) -> float:
        return self.outcome.seconds if self.outcome is not None else self.process.seconds

    def poll(self) -> list[EngineEvent]:
        """Read what arrived, update the state; returns the new events (for the log)."""
        if not self.running:
            return []
        events = self.process.poll()
        for event in events:
            if event.kind is EventKind.PROGRESS:
                if event.fraction is not None:
                    self.fraction = max(self.fraction, event.fraction)  # "write" restarts at 0
                self.stage, self.message = event.stage, event.message
            elif event.kind is EventKind.DONE:
                self.fraction = 1.0
        if not self.process.running:
            self._exited()
        return events

    def wait(self, timeout: float | None = None, on_event: Callable[[EngineEvent], None] | None = None,
             interval: float = 0.1) -> JobOutcome | None:
        """Block until the job ends (batch use and tests); None if ``timeout`` passed first."""
        def forward(event: EngineEvent) -> None:
            if on_event is not None:
                on_event(event)

        self.process.wait(timeout, on_event=forward, interval=interval)
        self.poll()
        return self.outcome

    def cancel(self) -> None:
        """Stop the process tree and remove every output; the outcome becomes CANCELLED."""
        if self.state is not JobState.RUNNING:
            return
        self.process.kill()
        self._finish(JobState.CANCELLED, None)

    def log_tail(self) -> list[str]:
        return list(self.process.log_tail)

    # -- internals -----------------------------------------------------------------------------

    def _exited(self) -> None:
        process = self.process
        if process.cancelled:
            self._finish(JobState.CANCELLED, None)
        elif process.exit_code == 0 and process.done is not None and self.segmentation_path.is_file():
            self._finish(JobState.SUCCEEDED, None)
        else:
            error = process.error
            label = self.request.input_label
            self._finish(JobState.FAILED, translate_engine_error(
                process.exit_code, error.message if error else "", error.details if error else "",
                list(process.log_tail), missing_output=process.exit_code == 0, event=error.data if error else None,
                renames={self.request.input_path.name: f"'{label}'"} if label else None,
            ))

    def _finish(self, state: JobState, error: FriendlyError | None) -> None:
        self.state = state
        seconds = self.process.seconds
        if state is JobState.SUCCEEDED:
            self.outcome = JobOutcome(state, self.segmentation_path, self.process.done or {}, None, seconds)
            self.message = "finished"
            return
        # Cancelled or failed: nothing half-written may be mistaken for a result.
        shutil.rmtree(self.work_dir, ignore_errors=True)
        self.outcome = JobOutcome(state, None, {}, error, seconds)
        self.message = "cancelled" if state is JobState.CANCELLED else "failed"
