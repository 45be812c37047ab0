"""Run MoME training in a background process and turn its progress into training events.

``TrainingProcess().start(request)`` launches, through the engine process runner shared with
MoME Segmentation (``MoMESegmentationLib.process``: one JSON-lines parser, one way to stop)::

    python -m mome.cli.main finetune --model BASE --data MANIFEST --preset backbone --steps N --lr LR
        --device DEV --output RUNDIR --name NAME --version VER --progress json          (quick adapt)
    python -m mome.cli.main train RUNDIR/train_config.json --output RUNDIR --progress json (full retrain)

``stop()`` asks the engine to stop cleanly: it saves a checkpoint in RUNDIR and exits with 130,
after which ``resume()`` starts the same command again with ``--resume``. The caller (Slicer's
QTimer, or a test) takes the events with :meth:`TrainingProcess.poll`. No Qt here.
"""

from __future__ import annotations

import json
import os
import signal
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any, Protocol

from MoMESegmentationLib.process import (
    EXIT_CANCELLED,
    EngineEvent,
    EngineProcess,
    EventKind,
    ProcessRunner,
    engine_command,
    engine_environment,
)

from .presets import TrainingPreset

CHECKPOINT = "checkpoint.pt"  # mome.training.checkpoint.CHECKPOINT (not imported: no torch at module load)


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
    env: dict[str, str] = field(default_factory=dict)  # added to the base environment
    engine_root: str | None = None  # put first on PYTHONPATH (the engine shipped with the extension)


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


def training_event(event: EngineEvent, total_steps: int | None = None) -> TrainingEvent:
    """What an engine event means for a training run (``MoMESegmentationLib.process.parse_line``
    parses the line)."""
    obj = event.data
    if event.kind is EventKind.LOG:
        return TrainingEvent("log", message=event.message)
    if event.kind is EventKind.DONE:
        return TrainingEvent("done", message="training finished", package=obj.get("package"),
                             val_dice=obj.get("validation_dice") or {}, step=obj.get("steps"), raw=obj)
    if event.kind is EventKind.ERROR:
        return TrainingEvent("error", message=event.message, raw={**obj, "details": event.details})
    common = dict(message=event.message, fraction=event.fraction, stage=event.stage or None, raw=obj,
                  step=_int(obj.get("step")))
    if "val_dice" in obj or "mean_dice" in obj:
        return TrainingEvent("validation", val_dice={k: float(v) for k, v in (obj.get("val_dice") or {}).items()},
                             mean_dice=_float(obj.get("mean_dice")), total_steps=total_steps, **common)
    if event.stage == "train" and "loss" in obj:
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
    """State machine over one training run: IDLE → RUNNING → (STOPPING →) STOPPED | FINISHED | FAILED.

    ``base_env`` is the environment the engine starts from (default ``os.environ``; in Slicer
    ``slicer.util.startupEnvironment()``)."""

    def __init__(self, runner: ProcessRunner | None = None, on_event: Callable[[TrainingEvent], None] | None = None,
                 base_env: Mapping[str, str] | None = None):
        self.process = EngineProcess(runner)
        self.on_event = on_event  # called from poll(), i.e. on the caller's thread
        self.base_env = dict(os.environ if base_env is None else base_env)
        self.state = State.IDLE
        self.request: TrainingRequest | None = None
        self.history = History()
        self.package: str | None = None  # the new package, once "done"
        self.error: str | None = None
        self.log: list[str] = []

    # -- commands -------------------------------------------------------------------------
    def command(self, request: TrainingRequest, resume: bool = False) -> list[str]:
        """The engine command line for ``request`` (writes the train config for full retraining)."""
        p = request.preset
        base = engine_command(request.python)
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
        self.state = State.RUNNING
        env = engine_environment({**self.base_env, **request.env}, request.engine_root)
        try:
            self.process.start(args, env=env)
        except Exception as exc:
            self.state, self.error = State.FAILED, f"could not start {args[0]}: {exc}"
            raise
        return args

    def stop(self) -> None:
        """Graceful stop: the engine writes a checkpoint, then exits (state STOPPED)."""
        if self.state == State.RUNNING:
            self.state = State.STOPPING
            self.process.terminate()

    def kill(self) -> None:
        """Hard stop (a second Stop while the engine is still saving): the last periodic checkpoint,
        if any, stays resumable."""
        if self.state in (State.RUNNING, State.STOPPING):
            self.state = State.STOPPING
            self.process.kill(grace_s=0.0)

    def can_resume(self) -> bool:
        return (self.request is not None and self.state in (State.STOPPED, State.FAILED)
                and (Path(self.request.run_dir) / CHECKPOINT).is_file())

    def resume(self) -> list[str]:
        if not self.can_resume():
            raise RuntimeError("nothing to resume: no stopped run with a checkpoint")
        return self.start(self.request, resume=True)  # type: ignore[arg-type]

    def wait(self, timeout: float | None = None) -> list[TrainingEvent]:
        """Block until the process ends (tests, batch use); returns the events since the last poll."""
        events: list[TrainingEvent] = []
        collected: list[EngineEvent] = []
        self.process.wait(timeout, on_event=collected.append)
        events += [self._handle(e) for e in collected]
        return events + self.poll()

    # -- events ---------------------------------------------------------------------------
    def poll(self) -> list[TrainingEvent]:
        """Events since the last call, in order (the last one is ``exit`` once the process has ended);
        updates state and history."""
        if self.state not in (State.RUNNING, State.STOPPING):
            return []
        events = [self._handle(e) for e in self.process.poll()]
        if not self.process.running and self.process.exit_code is not None:
            events.append(self._exit(self.process.exit_code))
        return events

    def _handle(self, engine_event: EngineEvent) -> TrainingEvent:
        event = training_event(engine_event, self.request.preset.steps if self.request else None)
        self.history.add(event)
        if event.kind == "log":
            self.log.append(event.message)
        elif event.kind == "done":
            self.package = event.package
        elif event.kind == "error":
            self.error = event.message
        if self.on_event is not None:
            self.on_event(event)
        return event

    def _exit(self, code: int) -> TrainingEvent:
        if code == 0 and self.package:
            self.state = State.FINISHED
        elif self.process.stop_requested or code in (EXIT_CANCELLED, -signal.SIGTERM):
            self.state = State.STOPPED
        else:
            self.state = State.FAILED
            if not self.error:
                tail = "\n".join(self.log[-5:])
                self.error = f"training exited with code {code}" + (f":\n{tail}" if tail else "")
        message = {State.FINISHED: "training finished", State.STOPPED: "training stopped",
                   State.FAILED: self.error or "training failed"}[self.state]
        event = TrainingEvent("exit", message=message, exit_code=code, state=self.state)
        if self.on_event is not None:
            self.on_event(event)
        return event


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
    from mome.hub import resolve_model

    return Path(resolve_model(name_or_path))
