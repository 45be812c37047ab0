"""The one way both MoME modules run the engine: a background ``mome`` process and its JSON lines.

Segmenting (``segmentation_job``), training and comparing models (``MoMETrainingLib``) all run the
engine's command line in a separate Python process (``PythonSlicer -m mome.cli.main COMMAND ...
--progress json``), as TotalSegmentator and MONAIAuto3DSeg do: a CUDA out-of-memory error or a
crash cannot take Slicer down, the GUI stays responsive, and Stop/Cancel can always end it. Each
line the process writes is either a JSON event (``{"event": "progress"|"done"|"error", ...}``, see
``mome/progress.py``) or plain log text (warnings, tracebacks: stderr is merged into the same
stream so their order is kept).

:class:`EngineProcess` is that run: start, :meth:`~EngineProcess.poll` the parsed events (from a
QTimer in the panel, in a loop in scripts and tests: no callback ever runs on a reader thread),
:meth:`~EngineProcess.terminate` politely (the engine treats it as Ctrl-C: it removes staged
files, a training saves a checkpoint) or :meth:`~EngineProcess.kill` the whole process tree. How
processes are started is injected (:class:`ProcessRunner`), and nothing here imports Qt or Slicer.
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

#: Seconds a stopped process gets to clean up (remove staged files) before it is killed outright.
CANCEL_GRACE_S = 3.0
#: Seconds to keep reading output after the process exited (see ``_PopenHandle.poll``).
OUTPUT_DRAIN_S = 5.0
#: ``mome`` exit codes (``mome/cli/main.py``, ``mome/cli/_common.py``).
EXIT_CANCELLED = 130
EXIT_REQUEST_ERROR = 2


# --------------------------------------------------------------------------------------------------
# Starting and stopping processes (injected)
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

    def terminate(self) -> None:
        """Ask the process to stop cleanly (the engine handles it like Ctrl-C)."""
        ...

    def kill_tree(self, grace_s: float = CANCEL_GRACE_S) -> None:
        """Stop the process *and every process it started*: politely first, after ``grace_s`` by force."""
        ...


class ProcessRunner(Protocol):
    def start(self, args: Sequence[str], env: Mapping[str, str] | None = None,
              cwd: str | os.PathLike[str] | None = None) -> ProcessHandle: ...


class SubprocessRunner:
    """Starts processes with ``subprocess.Popen``, stdout and stderr merged and decoded as UTF-8.

    Each child leads its own process group (a new session on POSIX; ``CREATE_NEW_PROCESS_GROUP``
    with a hidden console on Windows), because in Slicer the command starts with ``PythonSlicer``, a
    launcher that runs the real interpreter as *its* child: stopping the launcher alone would leave
    the engine running (MONAIAuto3DSeg's comment on ``proc.kill()``).
    """

    def start(self, args: Sequence[str], env: Mapping[str, str] | None = None,
              cwd: str | os.PathLike[str] | None = None) -> ProcessHandle:
        kwargs: dict[str, Any] = {}
        if os.name == "nt":  # pragma: no cover - Windows only
            kwargs["creationflags"] = subprocess.CREATE_NEW_PROCESS_GROUP | subprocess.CREATE_NO_WINDOW
        else:
            kwargs["start_new_session"] = True
        proc = subprocess.Popen(
            list(args), env=dict(env) if env is not None else None, cwd=cwd,
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            text=True, encoding="utf-8", errors="replace", bufsize=1, **kwargs,
        )
        return _PopenHandle(proc)


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

    def terminate(self) -> None:
        _signal_tree(self._proc, _children(self.pid), force=False)

    def kill_tree(self, grace_s: float = CANCEL_GRACE_S) -> None:
        descendants = _children(self.pid)
        _signal_tree(self._proc, descendants, force=False)
        deadline = time.monotonic() + grace_s
        while time.monotonic() < deadline:  # let the engine remove its staged files
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
    """Politely: SIGTERM to the group (POSIX), CTRL_BREAK to the group (Windows; ``mome`` maps
    SIGBREAK to Ctrl-C). By force: SIGKILL to the group, ``taskkill /F /T`` on Windows."""
    if os.name == "nt":  # pragma: no cover - exercised on Windows only
        if force:
            subprocess.run(["taskkill", "/PID", str(proc.pid), "/T", "/F"], capture_output=True, check=False)
        elif proc.poll() is None:
            proc.send_signal(signal.CTRL_BREAK_EVENT)  # type: ignore[attr-defined]
        return
    try:
        os.killpg(proc.pid, signal.SIGKILL if force else signal.SIGTERM)
    except (ProcessLookupError, PermissionError):
        pass
    for pid in descendants:  # anything that left the group (psutil only)
        try:
            os.kill(pid, signal.SIGKILL if force else signal.SIGTERM)
        except (ProcessLookupError, PermissionError, OSError):
            pass


# --------------------------------------------------------------------------------------------------
# The engine's command line and its JSON lines
# --------------------------------------------------------------------------------------------------


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


def engine_environment(base: Mapping[str, str], engine_root: str | os.PathLike[str] | None) -> dict[str, str]:
    """``base`` with the bundled engine first on ``PYTHONPATH`` (so the process runs exactly the engine
    the panel uses, see ``engine.py``) and unbuffered UTF-8 output (progress arrives as written)."""
    env = dict(base)
    env["PYTHONUNBUFFERED"] = "1"
    env["PYTHONIOENCODING"] = "utf-8"
    if engine_root is not None:
        paths = [str(engine_root)] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
        env["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(paths))
    return env


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
    data: dict[str, Any] = field(default_factory=dict)  # the whole JSON object


def parse_line(line: str) -> EngineEvent:
    """One output line as an event; anything that is not a JSON object with a known ``event`` is log text."""
    text = line.strip()
    if text.startswith("{"):
        try:
            obj = json.loads(text)
        except ValueError:
            obj = None
        if isinstance(obj, dict) and obj.get("event") in ("progress", "done", "error"):
            fraction = obj.get("fraction")
            return EngineEvent(
                kind=EventKind(obj["event"]),
                stage=str(obj.get("stage", "") or ""),
                fraction=float(fraction) if isinstance(fraction, (int, float)) else None,
                message=str(obj.get("message", "") or ""),
                details=str(obj.get("details", "") or ""),
                data=obj,
            )
    return EngineEvent(kind=EventKind.LOG, message=line.rstrip())


# --------------------------------------------------------------------------------------------------
# One run
# --------------------------------------------------------------------------------------------------


class EngineProcess:
    """One background run of the ``mome`` command line: what it reported and how it ended.

    After :meth:`start`, call :meth:`poll` regularly; once the process has ended, ``exit_code`` is
    set, ``done`` holds its "done" event (or None) and ``error`` its "error" event (or None), and
    ``log_tail`` its last plain lines.
    """

    def __init__(self, runner: ProcessRunner | None = None, clock: Callable[[], float] = time.monotonic,
                 log_tail_lines: int = 200):
        self.runner = runner or SubprocessRunner()
        self.clock = clock
        self.args: list[str] = []
        self.exit_code: int | None = None
        self.done: dict[str, Any] | None = None
        self.error: EngineEvent | None = None
        self.stop_requested = False
        self.log_tail: deque[str] = deque(maxlen=log_tail_lines)
        self._handle: ProcessHandle | None = None
        self._started = 0.0
        self._ended: float | None = None

    def start(self, args: Sequence[str], env: Mapping[str, str] | None = None,
              cwd: str | os.PathLike[str] | None = None) -> None:
        """Start the process (raises ``OSError`` when it cannot be started)."""
        if self.running:
            raise RuntimeError("this engine process is already running")
        self.args = list(args)
        self.exit_code, self.done, self.error, self.stop_requested, self._ended = None, None, None, False, None
        self._started = self.clock()
        self._handle = self.runner.start(self.args, env=env, cwd=cwd)

    @property
    def running(self) -> bool:
        return self._handle is not None and self.exit_code is None

    @property
    def seconds(self) -> float:
        if not self._started:
            return 0.0
        return (self._ended if self._ended is not None else self.clock()) - self._started

    def poll(self) -> list[EngineEvent]:
        """The events that arrived since the last call; sets ``exit_code`` once the process has ended."""
        if not self.running:
            return []
        assert self._handle is not None
        events = [self._consume(line) for line in self._handle.read_lines()]
        code = self._handle.poll()
        if code is not None:
            events += [self._consume(line) for line in self._handle.read_lines()]
            self._exited(code)
        return events

    def wait(self, timeout: float | None = None, on_event: Callable[[EngineEvent], None] | None = None,
             interval: float = 0.1) -> int | None:
        """Block until the process ends (scripts and tests); its exit code, or None after ``timeout``."""
        deadline = None if timeout is None else self.clock() + timeout
        while self.running:
            for event in self.poll():
                if on_event is not None:
                    on_event(event)
            if not self.running:
                break
            if deadline is not None and self.clock() > deadline:
                return None
            time.sleep(interval)
        return self.exit_code

    def terminate(self) -> None:
        """Ask the engine to stop cleanly (a training saves a checkpoint); the process ends by itself."""
        if self.running:
            self.stop_requested = True
            assert self._handle is not None
            self._handle.terminate()

    def kill(self, grace_s: float = CANCEL_GRACE_S) -> None:
        """Stop the whole process tree now (after ``grace_s`` to clean up) and read what it left."""
        if not self.running:
            return
        self.stop_requested = True
        assert self._handle is not None
        self._handle.kill_tree(grace_s)
        for line in self._handle.read_lines():
            self._consume(line)
        code = self._handle.poll()
        self._exited(code if code is not None else -int(signal.SIGKILL if os.name != "nt" else 1))

    @property
    def cancelled(self) -> bool:
        """Ended because it was stopped (by :meth:`terminate`/:meth:`kill` or Ctrl-C)."""
        return self.exit_code is not None and (self.stop_requested or self.exit_code == EXIT_CANCELLED)

    def _consume(self, line: str) -> EngineEvent:
        event = parse_line(line)
        if event.kind is EventKind.DONE:
            self.done = event.data
        elif event.kind is EventKind.ERROR:
            self.error = event
        elif event.kind is EventKind.LOG and event.message:
            self.log_tail.append(event.message)
        return event

    def _exited(self, code: int) -> None:
        self.exit_code = code
        self._ended = self.clock()
