"""Run MoME training in a background process and turn its JSON progress lines into events.

``TrainingProcess(runner).start(request)`` launches::

    python -m mome.cli.main finetune --model BASE --data MANIFEST --preset backbone --steps N --lr LR
        --device DEV --output RUNDIR --name NAME --version VER --progress json          (quick adapt)
    python -m mome.cli.main train RUNDIR/train_config.json --output RUNDIR --progress json (full retrain)

``stop()`` sends SIGTERM: the engine saves a checkpoint in RUNDIR and exits with 130, after which
``resume()`` starts the same command again with ``--resume``. The process's output is read on a
thread and queued; the caller (Slicer's QTimer, or a test) takes the parsed events with
:meth:`TrainingProcess.poll`, so no callback ever runs on a non-GUI thread. No Qt here: Slicer's
widget gives the runner Slicer's startup environment and ``PythonSlicer`` as the interpreter.
"""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any, Protocol

from .presets import TrainingPreset

CHECKPOINT = "checkpoint.pt"  # mome.training.checkpoint.CHECKPOINT (not imported: no torch at module load)
CANCELLED_EXIT = 130  # mome.cli.main: KeyboardInterrupt / SIGTERM
USER_ERROR_EXIT = 2


# ---------------------------------------------------------------------- runner (injected)
class ProcessRunner(Protocol):
    """Starts one child process and streams its output lines."""

    def start(self, args: list[str], cwd: str | None, env: dict[str, str] | None,
              on_line: Callable[[str], None], on_exit: Callable[[int], None]) -> None:
        """Launch ``args``; call ``on_line`` for every stdout/stderr line and ``on_exit(code)`` once,
        both from any thread."""

    def terminate(self) -> None:
        """Ask the process to stop cleanly (SIGTERM; the engine checkpoints on it)."""

    def kill(self) -> None:
        """Stop it now (and its children)."""

    def is_running(self) -> bool: ...

    def wait(self, timeout: float | None = None) -> int | None:
        """Exit code, or None if still running after ``timeout`` seconds."""


class SubprocessRunner:
    """:class:`ProcessRunner` on ``subprocess.Popen`` with a reader thread.

    The child runs in its own process group (session), and Stop signals the whole group: in Slicer
    the command starts with ``PythonSlicer``, a launcher that runs the real Python as *its* child,
    so signalling the launcher alone would orphan the trainer. ``base_env`` is the environment the
    child starts from (default ``os.environ``; in Slicer ``slicer.util.startupEnvironment()``).
    """

    def __init__(self, base_env: dict[str, str] | None = None):
        self.base_env = base_env
        self._proc: subprocess.Popen | None = None
        self._reader: threading.Thread | None = None

    def start(self, args, cwd, env, on_line, on_exit) -> None:
        if self.is_running():
            raise RuntimeError("a training process is already running")
        kwargs: dict[str, Any] = {}
        if sys.platform == "win32":
            kwargs["creationflags"] = subprocess.CREATE_NEW_PROCESS_GROUP | getattr(subprocess, "CREATE_NO_WINDOW", 0)
        else:
            kwargs["start_new_session"] = True
        base = dict(os.environ if self.base_env is None else self.base_env)
        proc = subprocess.Popen(args, cwd=cwd, env={**base, **(env or {})}, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, text=True, encoding="utf-8",
                                errors="replace", bufsize=1, **kwargs)
        self._proc = proc

        def read() -> None:
            assert proc.stdout is not None
            for line in proc.stdout:  # ends when every process of the group has closed the pipe
                on_line(line.rstrip("\r\n"))
            on_exit(proc.wait())

        self._reader = threading.Thread(target=read, name="mome-training-output", daemon=True)
        self._reader.start()

    def terminate(self) -> None:
        if not self.is_running():
            return
        if sys.platform == "win32":
            self._proc.send_signal(signal.CTRL_BREAK_EVENT)  # type: ignore[attr-defined]
        else:
            _signal_group(self._proc.pid, signal.SIGTERM)

    def kill(self) -> None:
        if not self.is_running():
            return
        if sys.platform == "win32":
            subprocess.run(["taskkill", "/F", "/T", "/PID", str(self._proc.pid)], capture_output=True, check=False)
        else:
            _signal_group(self._proc.pid, signal.SIGKILL)

    def is_running(self) -> bool:
        """Until the output pipe closes: a launcher may exit before the trainer it started."""
        if self._proc is None:
            return False
        return self._proc.poll() is None or (self._reader is not None and self._reader.is_alive())

    def wait(self, timeout: float | None = None) -> int | None:
        if self._proc is None:
            return None
        if self._reader is not None:
            self._reader.join(timeout)  # every line delivered (and on_exit called) before wait() returns
            if self._reader.is_alive():
                return None
        try:
            return self._proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None


def _signal_group(pid: int, sig: int) -> None:
    try:
        os.killpg(pid, sig)  # the child leads its own session: its group id is its pid
    except ProcessLookupError:
        pass


# ---------------------------------------------------------------------- request and events
@dataclass
class TrainingRequest:
    base_model: str  # package path (or installed name) to start from
    manifest: str  # dataset.json from the dataset builder
    run_dir: str  # checkpoints, logs and the new package go here
    preset: TrainingPreset
    name: str  # the new model's name (never the base's name and version)
    version: str
    device: str = "auto"  # auto | cpu | cuda
    classes: list[str] = field(default_factory=list)  # empty: all classes of the manifest
    python: str = sys.executable  # in Slicer: PythonSlicer
    env: dict[str, str] = field(default_factory=dict)


class State(str, Enum):
    IDLE = "idle"
    RUNNING = "running"
    STOPPING = "stopping"
    STOPPED = "stopped"  # stopped by the user with a checkpoint: resumable
    FINISHED = "finished"
    FAILED = "failed"


@dataclass
class TrainingEvent:
    """One parsed output line (or the process's end). ``kind``:

    * ``step``: ``step``, ``total_steps``, ``loss``, ``lr``, ``eta_s``, ``fraction``
    * ``validation``: ``step``, ``val_dice`` (class -> Dice), ``mean_dice``
    * ``stage``: any other progress update (data preparation, ...): ``stage``, ``fraction``, ``message``
    * ``done``: ``package`` (path of the new model package), ``val_dice``
    * ``error``: ``message`` (and ``details``) reported by the engine
    * ``log``: a line that is not JSON (engine logging, warnings)
    * ``exit``: the process ended: ``exit_code`` and the new ``state``
    """

    kind: str
    message: str = ""
    step: int | None = None
    total_steps: int | None = None
    loss: float | None = None
    lr: float | None = None
    eta_s: float | None = None
    fraction: float | None = None
    stage: str | None = None
    val_dice: dict[str, float] | None = None
    mean_dice: float | None = None
    package: str | None = None
    exit_code: int | None = None
    state: State | None = None
    raw: dict[str, Any] | None = None


def parse_line(line: str, total_steps: int | None = None) -> TrainingEvent:
    """An engine output line (``--progress json``) as an event; other lines are ``log`` events."""
    text = line.strip()
    try:
        obj = json.loads(text) if text.startswith("{") else None
    except json.JSONDecodeError:
        obj = None
    if not isinstance(obj, dict) or "event" not in obj:
        return TrainingEvent("log", message=line)
    kind = obj["event"]
    if kind == "done":
        dice = obj.get("validation_dice") or {}
        return TrainingEvent("done", message="training finished", package=obj.get("package"), val_dice=dice,
                             step=obj.get("steps"), raw=obj)
    if kind == "error":
        details = obj.get("details") or ""
        return TrainingEvent("error", message=str(obj.get("message", "")), raw={**obj, "details": details})
    stage = obj.get("stage")
    common = dict(message=str(obj.get("message", "")), fraction=_float(obj.get("fraction")), stage=stage, raw=obj,
                  step=_int(obj.get("step")))
    if "val_dice" in obj or "mean_dice" in obj:
        return TrainingEvent("validation", val_dice={k: float(v) for k, v in (obj.get("val_dice") or {}).items()},
                             mean_dice=_float(obj.get("mean_dice")), total_steps=total_steps, **common)
    if stage == "train" and "loss" in obj:
        return TrainingEvent("step", loss=_float(obj.get("loss")), lr=_float(obj.get("lr")),
                             eta_s=_float(obj.get("eta_s")), total_steps=total_steps, **common)
    return TrainingEvent("stage", **common)


def _float(v) -> float | None:
    return None if v is None else float(v)


def _int(v) -> int | None:
    return None if v is None else int(v)


@dataclass
class History:
    """What the live plot shows: loss per step and mean validation Dice per validation step."""

    loss: list[tuple[int, float]] = field(default_factory=list)
    mean_dice: list[tuple[int, float]] = field(default_factory=list)
    val_dice: list[tuple[int, dict[str, float]]] = field(default_factory=list)

    def add(self, event: TrainingEvent) -> None:
        if event.kind == "step" and event.step is not None and event.loss is not None:
            self.loss = [p for p in self.loss if p[0] < event.step]  # a resume replays nothing twice
            self.loss.append((event.step, event.loss))
        elif event.kind == "validation" and event.step is not None:
            if event.mean_dice is not None:
                self.mean_dice = [p for p in self.mean_dice if p[0] < event.step] + [(event.step, event.mean_dice)]
            self.val_dice = [p for p in self.val_dice if p[0] < event.step] + [(event.step, event.val_dice or {})]


# ---------------------------------------------------------------------- the process
class TrainingProcessProtocol(Protocol):
    state: State
    history: History

    def start(self, request: TrainingRequest) -> list[str]: ...

    def stop(self) -> None: ...

    def resume(self) -> list[str]: ...

    def poll(self) -> list[TrainingEvent]: ...

    def can_resume(self) -> bool: ...


class TrainingProcess:
    """State machine over one training run: IDLE → RUNNING → (STOPPING →) STOPPED | FINISHED | FAILED."""

    def __init__(self, runner: ProcessRunner | None = None, on_event: Callable[[TrainingEvent], None] | None = None):
        self.runner = runner or SubprocessRunner()
        self.on_event = on_event  # called from poll(), i.e. on the caller's thread
        self.state = State.IDLE
        self.request: TrainingRequest | None = None
        self.history = History()
        self.package: str | None = None  # the new package, once "done"
        self.error: str | None = None
        self.log: list[str] = []
        self._queue: queue.Queue[TrainingEvent] = queue.Queue()
        self._stop_requested = False

    # -- commands -------------------------------------------------------------------------
    def command(self, request: TrainingRequest, resume: bool = False) -> list[str]:
        """The engine command line for ``request`` (writes the train config for full retraining)."""
        p = request.preset
        base = [request.python, "-m", "mome.cli.main"]
        if p.command == "finetune":
            args = base + ["finetune", "--model", request.base_model, "--data", request.manifest,
                           "--preset", p.freeze, "--steps", str(p.steps), "--lr", repr(p.lr),
                           "--device", request.device, "--output", request.run_dir,
                           "--name", request.name, "--version", request.version]
            if request.classes:
                args += ["--classes", ",".join(request.classes)]
        elif p.command == "train":
            config = write_train_config(request)
            args = base + ["train", str(config), "--output", request.run_dir, "--device", request.device]
        else:
            raise ValueError(f"unknown engine command {p.command!r} in preset {p.key!r}")
        args += ["--progress", "json"]
        return args + (["--resume"] if resume else [])

    def start(self, request: TrainingRequest, resume: bool = False) -> list[str]:
        if self.state in (State.RUNNING, State.STOPPING):
            raise RuntimeError("training is already running; stop it first")
        Path(request.run_dir).mkdir(parents=True, exist_ok=True)
        args = self.command(request, resume)
        self.request = request
        if not resume:
            self.history = History()
            self.log = []
        self.package = self.error = None
        self._stop_requested = False
        self.state = State.RUNNING
        env = {"PYTHONUNBUFFERED": "1", **request.env}
        total = request.preset.steps
        try:
            self.runner.start(args, None, env, lambda line: self._queue.put(parse_line(line, total)),
                              lambda code: self._queue.put(TrainingEvent("exit", exit_code=code)))
        except Exception as exc:
            self.state, self.error = State.FAILED, f"could not start {args[0]}: {exc}"
            raise
        return args

    def stop(self) -> None:
        """Graceful stop: SIGTERM; the engine writes a checkpoint, then exits (state STOPPED)."""
        if self.state == State.RUNNING:
            self._stop_requested = True
            self.state = State.STOPPING
            self.runner.terminate()

    def kill(self) -> None:
        """Hard stop (a second Stop while the engine is still saving): the last periodic checkpoint,
        if any, stays resumable."""
        if self.state in (State.RUNNING, State.STOPPING):
            self._stop_requested = True
            self.state = State.STOPPING
            self.runner.kill()

    def can_resume(self) -> bool:
        return (self.request is not None and self.state in (State.STOPPED, State.FAILED)
                and (Path(self.request.run_dir) / CHECKPOINT).is_file())

    def resume(self) -> list[str]:
        if not self.can_resume():
            raise RuntimeError("nothing to resume: no stopped run with a checkpoint")
        return self.start(self.request, resume=True)  # type: ignore[arg-type]

    def wait(self, timeout: float | None = None) -> list[TrainingEvent]:
        """Block until the process ends (tests, batch use); returns the events since the last poll."""
        self.runner.wait(timeout)
        return self.poll()

    # -- events ---------------------------------------------------------------------------
    def poll(self) -> list[TrainingEvent]:
        """Events queued since the last call, in order; updates state and history."""
        events = []
        while True:
            try:
                event = self._queue.get_nowait()
            except queue.Empty:
                break
            self._apply(event)
            events.append(event)
            if self.on_event is not None:
                self.on_event(event)
        return events

    def _apply(self, event: TrainingEvent) -> None:
        self.history.add(event)
        if event.kind == "log":
            self.log.append(event.message)
        elif event.kind == "done":
            self.package = event.package
        elif event.kind == "error":
            self.error = event.message
        elif event.kind == "exit":
            code = event.exit_code
            if code == 0 and self.package:
                self.state = State.FINISHED
            elif self._stop_requested or code in (CANCELLED_EXIT, -signal.SIGTERM):
                self.state = State.STOPPED
            else:
                self.state = State.FAILED
                if not self.error:
                    tail = "\n".join(self.log[-5:])
                    self.error = f"training exited with code {code}" + (f":\n{tail}" if tail else "")
            event.state = self.state
            event.message = {State.FINISHED: "training finished", State.STOPPED: "training stopped",
                             State.FAILED: self.error or "training failed"}[self.state]


def write_train_config(request: TrainingRequest) -> Path:
    """``RUNDIR/train_config.json`` for ``mome train``: the base package's grid, every group trained."""
    from mome.package import read_package_json
    from mome.training.config import DataSection, OptimSection, TrainConfig

    p = request.preset
    base = read_package_json(_resolve_base(request.base_model))
    pre = base["preprocessing"]
    steps = p.steps
    cfg = TrainConfig(
        name=request.name, version=request.version,
        description=f"retrained from {base['name']} {base['version']} in 3D Slicer",
        output=request.run_dir, device=request.device, base_model=request.base_model, freeze=p.freeze,
        classes=list(request.classes),
        validate_every=p.validate_every or max(1, steps // 10), checkpoint_every=p.checkpoint_every or max(1, steps // 20),
        data=DataSection(manifest=str(Path(request.manifest).resolve()), spacing=tuple(pre["spacing"]),
                         patch_size=tuple(pre["patch_size"]), hu_window=tuple(pre["hu_window"])),
        optim=OptimSection(steps=steps, lr=p.lr, warmup_steps=max(1, steps // 20)),
    )
    path = Path(request.run_dir) / "train_config.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(cfg.to_dict(), indent=2))
    return path


def _resolve_base(name_or_path: str) -> Path:
    path = Path(name_or_path)
    if path.exists():
        return path
    from mome.hub import resolve_model as locate_model

    return Path(locate_model(name_or_path))
