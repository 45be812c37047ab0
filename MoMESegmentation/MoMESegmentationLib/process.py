"""Running ``mome segment`` as a background process and reading its JSON-lines protocol.

The engine runs in a separate Python process (``PythonSlicer -m mome.cli.main segment ...
--progress json``), as TotalSegmentator and MONAIAuto3DSeg do: a CUDA out-of-memory error or a crash
cannot take Slicer down, the GUI stays responsive, and Cancel can always stop it. Each line the
process writes to stdout is either a JSON event (``{"event": "progress"|"done"|"error", ...}``,
see ``mome/progress.py``) or plain log text (warnings, tracebacks on stderr, merged into the same
stream so their order is kept).

Nothing here imports Qt or Slicer: the widget polls :meth:`SegmentationJob.poll` from a QTimer, and
tests drive the same class with a real subprocess. The process runner is injected
(:class:`ProcessRunner`), so a test or a remote back end can replace how processes are started.
"""

from __future__ import annotations

import json
import os
import queue
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any, Protocol

from .errors import FriendlyError, translate_engine_error

#: Seconds a cancelled process gets to remove its staged files before it is killed outright.
CANCEL_GRACE_S = 3.0
#: Seconds to keep reading output after the process exited (see ``_PopenHandle.poll``).
OUTPUT_DRAIN_S = 5.0


# --------------------------------------------------------------------------------------------------
# Process runner (injected)
# --------------------------------------------------------------------------------------------------


class ProcessHandle(Protocol):
    """A started process whose merged stdout/stderr is read line by line without blocking."""

    pid: int

    def read_lines(self) -> list[str]:
        """Every output line received since the last call (never blocks)."""
        ...

    def poll(self) -> int | None:
        """The exit code once the process has ended and all its output was read, else None."""
        ...

    def wait(self, timeout: float | None = None) -> int | None:
        """Wait for the process to end (and its output to be read); the exit code, or None on timeout."""
        ...

    def kill_tree(self, grace_s: float = CANCEL_GRACE_S) -> None:
        """Stop the process *and every process it started*: politely first, then by force."""
        ...


class ProcessRunner(Protocol):
    def start(self, args: Sequence[str], env: Mapping[str, str] | None = None,
              cwd: str | os.PathLike[str] | None = None) -> ProcessHandle: ...


class _PopenHandle:
    """A ``subprocess.Popen`` in its own process group, with a reader thread feeding a queue."""

    def __init__(self, proc: subprocess.Popen):
        self._proc = proc
        self.pid = proc.pid
        self._exited_at: float | None = None
        self._lines: queue.Queue[str] = queue.Queue()
        self._reader = threading.Thread(target=self._read, name=f"mome-output-{proc.pid}", daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self._proc.stdout is not None
        for line in self._proc.stdout:
            self._lines.put(line.rstrip("\r\n"))
        self._proc.stdout.close()

    def read_lines(self) -> list[str]:
        lines = []
        while True:
            try:
                lines.append(self._lines.get_nowait())
            except queue.Empty:
                return lines

    def poll(self) -> int | None:
        code = self._proc.poll()
        if code is None:
            return None
        if self._exited_at is None:
            self._exited_at = time.monotonic()
        # Output ends when every process holding the pipe has closed it; a leftover grandchild
        # could hold it forever, so stop waiting for it a few seconds after the engine exited.
        if self._reader.is_alive() and time.monotonic() - self._exited_at < OUTPUT_DRAIN_S:
            return None
        return code

    def wait(self, timeout: float | None = None) -> int | None:
        try:
            self._proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None
        self._reader.join(OUTPUT_DRAIN_S)
        self._exited_at = time.monotonic() - OUTPUT_DRAIN_S
        return self.poll()

    def kill_tree(self, grace_s: float = CANCEL_GRACE_S) -> None:
        # PythonSlicer is a launcher that starts the real interpreter as a child, so stopping only
        # the direct child would leave the engine running (MONAIAuto3DSeg's comment on proc.kill()).
        descendants = _children(self.pid)
        _signal_tree(self._proc, descendants, force=False)
        deadline = time.monotonic() + grace_s
        while time.monotonic() < deadline:  # let the engine remove its staged files (SIGTERM = Ctrl-C)
            if (self._proc.poll() is not None and not any(_alive(p) for p in descendants)
                    and not _group_alive(self.pid)):
                break
            time.sleep(0.05)
        _signal_tree(self._proc, descendants + _children(self.pid), force=True)
        try:
            self._proc.wait(5)
        except subprocess.TimeoutExpired:  # pragma: no cover - a process that ignores SIGKILL
            pass
        self._reader.join(5)


class SubprocessRunner:
    """Starts processes with ``subprocess.Popen`` in a new process group (session on POSIX), with
    stdout and stderr merged and decoded as UTF-8, and no console window on Windows (as
    ``slicer.util.launchConsoleProcess`` does)."""

    def start(self, args: Sequence[str], env: Mapping[str, str] | None = None,
              cwd: str | os.PathLike[str] | None = None) -> ProcessHandle:
        kwargs: dict[str, Any] = {}
        if os.name == "nt":
            info = subprocess.STARTUPINFO()  # type: ignore[attr-defined]
            info.dwFlags |= subprocess.STARTF_USESHOWWINDOW  # type: ignore[attr-defined]
            info.wShowWindow = 0
            kwargs["startupinfo"] = info
            kwargs["creationflags"] = subprocess.CREATE_NEW_PROCESS_GROUP  # type: ignore[attr-defined]
        else:
            kwargs["start_new_session"] = True  # own process group: the whole tree can be signalled
        proc = subprocess.Popen(
            list(args), env=dict(env) if env is not None else None, cwd=cwd,
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            text=True, encoding="utf-8", errors="replace", bufsize=1, **kwargs,
        )
        return _PopenHandle(proc)


def _children(pid: int) -> list[int]:
    """PIDs of every descendant of ``pid`` (needs psutil; without it the process group covers them)."""
    try:
        import psutil
    except ImportError:
        return []
    try:
        return [p.pid for p in psutil.Process(pid).children(recursive=True)]
    except psutil.Error:
        return []


def _alive(pid: int) -> bool:
    try:
        import psutil
    except ImportError:
        psutil = None
    if psutil is not None:
        try:
            return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
        except psutil.Error:
            return False
    if os.name == "nt":  # pragma: no cover - Windows without psutil: rely on taskkill /T
        return False
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    return True


def _group_alive(pgid: int) -> bool:
    """Whether any process of the group started with ``start_new_session`` still exists (POSIX)."""
    if os.name == "nt":  # pragma: no cover
        return False
    try:
        os.killpg(pgid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    return True


def _signal_tree(proc: subprocess.Popen, descendants: list[int], force: bool) -> None:
    if os.name == "nt":  # pragma: no cover - exercised on Windows only
        subprocess.run(["taskkill", "/PID", str(proc.pid), "/T"] + (["/F"] if force else []),
                       capture_output=True, check=False)
    else:
        sig = signal.SIGKILL if force else signal.SIGTERM
        try:
            os.killpg(proc.pid, sig)  # the group created by start_new_session
        except (ProcessLookupError, PermissionError):
            pass
    for pid in descendants:  # anything that left the group (psutil only)
        try:
            os.kill(pid, signal.SIGKILL if force or os.name == "nt" else signal.SIGTERM)
        except (ProcessLookupError, PermissionError, OSError):
            pass


# --------------------------------------------------------------------------------------------------
# Protocol: JSON lines → events
# --------------------------------------------------------------------------------------------------


class EventKind(str, Enum):
    PROGRESS = "progress"
    DONE = "done"
    ERROR = "error"
    LOG = "log"  # a line that is not a JSON event: warnings, library output, tracebacks


@dataclass
class EngineEvent:
    kind: EventKind
    stage: str = ""
    fraction: float | None = None
    message: str = ""
    details: str = ""
    data: dict[str, Any] = field(default_factory=dict)


def parse_line(line: str) -> EngineEvent:
    """One output line as an event; anything that is not a JSON object with a known ``event`` is log text."""
    text = line.strip()
    if text.startswith("{"):
        try:
            obj = json.loads(text)
        except ValueError:
            obj = None
        if isinstance(obj, dict) and obj.get("event") in ("progress", "done", "error"):
            kind = EventKind(obj["event"])
            fraction = obj.get("fraction")
            return EngineEvent(
                kind=kind,
                stage=str(obj.get("stage", "")),
                fraction=float(fraction) if isinstance(fraction, (int, float)) else None,
                message=str(obj.get("message", "")),
                details=str(obj.get("details", "") or ""),
                data=obj,
            )
    return EngineEvent(kind=EventKind.LOG, message=line.rstrip())


# --------------------------------------------------------------------------------------------------
# One segmentation run
# --------------------------------------------------------------------------------------------------


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
    allow_free_text: bool = False
    extra_args: tuple[str, ...] = ()


@dataclass
class JobOutcome:
    state: JobState
    segmentation_path: Path | None = None
    labelmap_path: Path | None = None
    result: dict[str, Any] = field(default_factory=dict)  # the "done" event
    error: FriendlyError | None = None
    seconds: float = 0.0


def engine_command(python_executable: str | None = None) -> list[str]:
    """``python -m mome.cli.main``: the engine's command line in the interpreter that will run it."""
    return [python_executable or sys.executable, "-m", "mome.cli.main"]


def find_python_slicer() -> str | None:
    """Slicer's stand-alone interpreter (``PythonSlicer``), the right one to run the engine inside
    Slicer; ``sys.executable`` there is the Slicer application itself."""
    found = shutil.which("PythonSlicer")
    if found:
        return found
    candidate = Path(sys.executable).with_name("PythonSlicer" + (".exe" if os.name == "nt" else ""))
    return str(candidate) if candidate.exists() else None


class SegmentationJob:
    """One ``mome segment`` run in the background: start, poll events, cancel, outcome.

    ``work_dir`` holds the outputs (``result.seg.nrrd``, ``result_labels.nrrd``) and is emptied on
    cancel or failure, so a stopped run leaves nothing behind. ``engine_root`` (the folder that
    contains the ``mome`` package) is put first on ``PYTHONPATH`` so that the process runs exactly
    the engine shipped with the extension.
    """

    def __init__(
        self,
        request: JobRequest,
        work_dir: str | os.PathLike[str],
        runner: ProcessRunner | None = None,
        command: Sequence[str] | None = None,
        engine_root: str | os.PathLike[str] | None = None,
        environment: Mapping[str, str] | None = None,
        clock: Callable[[], float] = time.monotonic,
        log_tail_lines: int = 200,
    ):
        self.request = request
        self.work_dir = Path(work_dir)
        self.runner = runner or SubprocessRunner()
        self.command = list(command) if command is not None else engine_command()
        self.engine_root = Path(engine_root) if engine_root is not None else None
        self.environment = dict(environment) if environment is not None else dict(os.environ)
        self.clock = clock
        self.state = JobState.CREATED
        self.fraction = 0.0
        self.stage = ""
        self.message = ""
        self.outcome: JobOutcome | None = None
        self._handle: ProcessHandle | None = None
        self._started = 0.0
        self._done: dict[str, Any] | None = None
        self._error: EngineEvent | None = None
        self._log_tail: deque[str] = deque(maxlen=log_tail_lines)
        self._cancel_requested = False

    # -- paths and command ---------------------------------------------------------------------

    @property
    def segmentation_path(self) -> Path:
        return self.work_dir / "result.seg.nrrd"

    @property
    def labelmap_path(self) -> Path:
        return self.work_dir / "result_labels.nrrd"

    def arguments(self) -> list[str]:
        r = self.request
        args = [
            *self.command, "segment", str(r.input_path),
            "--prompts", r.prompts,
            "--output", str(self.segmentation_path),
            "--labelmap", str(self.labelmap_path),
            "--progress", "json",
            "--device", r.device,
        ]
        if r.model:
            args += ["--model", str(r.model)]
        if r.fast:
            args.append("--fast")
        if r.allow_free_text:
            args.append("--allow-free-text")
        args += list(r.extra_args)
        return args

    def process_environment(self) -> dict[str, str]:
        env = dict(self.environment)
        env["PYTHONUNBUFFERED"] = "1"  # progress lines arrive as they are written
        env["PYTHONIOENCODING"] = "utf-8"
        if self.engine_root is not None:
            paths = [str(self.engine_root)] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
            env["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(paths))
        return env

    # -- lifecycle -----------------------------------------------------------------------------

    def start(self) -> None:
        if self.state is not JobState.CREATED:
            raise RuntimeError("a segmentation job can only be started once")
        self.work_dir.mkdir(parents=True, exist_ok=True)
        self._started = self.clock()
        self.state = JobState.RUNNING
        self.message = "starting MoME"
        try:
            self._handle = self.runner.start(self.arguments(), env=self.process_environment(), cwd=self.work_dir)
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
        if self.outcome is not None:
            return self.outcome.seconds
        return self.clock() - self._started if self._started else 0.0

    def poll(self) -> list[EngineEvent]:
        """Read what arrived, update the state; returns the new events (for the log)."""
        if self._handle is None or self.state is not JobState.RUNNING:
            return []
        events = [self._consume(line) for line in self._handle.read_lines()]
        code = self._handle.poll()
        if code is not None:
            events += [self._consume(line) for line in self._handle.read_lines()]
            self._exited(code)
        return events

    def wait(self, timeout: float | None = None, on_event: Callable[[EngineEvent], None] | None = None,
             interval: float = 0.1) -> JobOutcome | None:
        """Block until the job ends (batch use and tests); None if ``timeout`` passed first."""
        deadline = None if timeout is None else self.clock() + timeout
        while self.state is JobState.RUNNING:
            for event in self.poll():
                if on_event is not None:
                    on_event(event)
            if self.state is not JobState.RUNNING:
                break
            if deadline is not None and self.clock() > deadline:
                return None
            time.sleep(interval)
        return self.outcome

    def cancel(self) -> None:
        """Stop the process tree and remove every output; the outcome becomes CANCELLED."""
        if self.state is not JobState.RUNNING:
            return
        self._cancel_requested = True
        if self._handle is not None:
            self._handle.kill_tree()
            for line in self._handle.read_lines():
                self._consume(line)
        self._finish(JobState.CANCELLED, None)

    # -- internals -----------------------------------------------------------------------------

    def _consume(self, line: str) -> EngineEvent:
        event = parse_line(line)
        if event.kind is EventKind.PROGRESS:
            if event.fraction is not None:
                self.fraction = max(self.fraction, event.fraction)  # "write" restarts at 0
            self.stage = event.stage
            self.message = event.message
        elif event.kind is EventKind.DONE:
            self._done = event.data
            self.fraction = 1.0
        elif event.kind is EventKind.ERROR:
            self._error = event
        elif event.message:
            self._log_tail.append(event.message)
        return event

    def _exited(self, code: int) -> None:
        if self._cancel_requested:
            self._finish(JobState.CANCELLED, None)
        elif code == 0 and self._done is not None and self.segmentation_path.is_file():
            self._finish(JobState.SUCCEEDED, None)
        else:
            self._finish(JobState.FAILED, translate_engine_error(
                code,
                self._error.message if self._error else "",
                self._error.details if self._error else "",
                list(self._log_tail),
                missing_output=code == 0,
            ))

    def _finish(self, state: JobState, error: FriendlyError | None) -> None:
        self.state = state
        seconds = self.clock() - self._started if self._started else 0.0
        if state is JobState.SUCCEEDED:
            self.outcome = JobOutcome(state, self.segmentation_path,
                                      self.labelmap_path if self.labelmap_path.is_file() else None,
                                      self._done or {}, None, seconds)
            self.message = "finished"
            return
        # Cancelled or failed: nothing half-written may be mistaken for a result.
        shutil.rmtree(self.work_dir, ignore_errors=True)
        self.outcome = JobOutcome(state, None, None, {}, error, seconds)
        self.message = "cancelled" if state is JobState.CANCELLED else "failed"

    def log_tail(self) -> list[str]:
        return list(self._log_tail)
