"""One Segment click, from the volume node to the segmentation node, without Qt.

:class:`SegmentationLogic` writes the volume to a private temporary folder, starts the engine
process (:mod:`.process`), and once it is done plans and performs the import (:mod:`.segmentation_io`).
The widget drives it from a QTimer (``poll``); tests and batch scripts call :meth:`run` instead.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from . import segmentation_io
from .errors import FriendlyError
from .parameters import SegmentationParameters
from .process import EngineEvent, JobOutcome, JobRequest, JobState, ProcessRunner, SegmentationJob


class SegmentationLogicProtocol(Protocol):
    """What the widget uses (a stand-in implements it in widget tests)."""

    job: SegmentationJob | None

    def start(self, volume_node: Any, parameters: SegmentationParameters) -> SegmentationJob: ...

    def poll(self) -> list[EngineEvent]: ...

    def cancel(self) -> None: ...

    def plan_import(self, target_node: Any | None) -> segmentation_io.ImportPlan: ...

    def import_result(self, target_node: Any | None, replace_protected: bool = False) -> segmentation_io.ImportReport: ...

    def cleanup(self) -> None: ...


@dataclass
class RunResult:
    outcome: JobOutcome
    report: segmentation_io.ImportReport | None = None


class SegmentationLogic:
    """Qt-free orchestration over an MRML ``scene`` (``slicer.mrmlScene`` in Slicer, a
    ``vtkMRMLScene`` in tests). All collaborators are injectable; the defaults run the bundled
    engine with ``PythonSlicer``/``sys.executable`` as a subprocess."""

    def __init__(self, scene: Any, runner: ProcessRunner | None = None, command: Sequence[str] | None = None,
                 engine_root: str | os.PathLike[str] | None = None, environment: Mapping[str, str] | None = None,
                 temp_root: str | os.PathLike[str] | None = None):
        self.scene = scene
        self.runner = runner
        self.command = list(command) if command is not None else None
        self.engine_root = engine_root
        self.environment = environment
        self.temp_root = temp_root
        self.job: SegmentationJob | None = None
        self.volume_node: Any = None
        self.session_dir: Path | None = None

    # -- running -------------------------------------------------------------------------------

    def start(self, volume_node: Any, parameters: SegmentationParameters) -> SegmentationJob:
        problems = parameters.validate()
        if problems:
            raise FriendlyError(" ".join(problems))
        if self.job is not None and self.job.running:
            raise FriendlyError("A segmentation is already running; cancel it or wait until it finishes.")
        self.cleanup()
        segmentation_io.check_input_volume(volume_node)
        self.session_dir = Path(tempfile.mkdtemp(prefix="MoME-", dir=self.temp_root))
        input_path = segmentation_io.write_volume_for_engine(volume_node, self.session_dir / "input.nrrd")
        self.volume_node = volume_node
        request = JobRequest(
            input_path=input_path, prompts=parameters.prompts, model=parameters.model,
            device=parameters.device, fast=parameters.fast, allow_free_text=parameters.allow_free_text,
        )
        self.job = SegmentationJob(request, self.session_dir / "output", runner=self.runner, command=self.command,
                                   engine_root=self.engine_root, environment=self.environment)
        try:
            self.job.start()
        except FriendlyError:
            self.cleanup()
            raise
        return self.job

    def poll(self) -> list[EngineEvent]:
        return self.job.poll() if self.job is not None else []

    def cancel(self) -> None:
        if self.job is not None:
            self.job.cancel()

    def run(self, volume_node: Any, parameters: SegmentationParameters, target_node: Any | None = None,
            replace_protected: bool = False, timeout: float | None = None,
            on_event: Callable[[EngineEvent], None] | None = None) -> RunResult:
        """Start, wait and import in one call (batch scripts, tests, Slicer's ``--testing``)."""
        job = self.start(volume_node, parameters)
        try:
            outcome = job.wait(timeout, on_event=on_event)
            if outcome is None:
                job.cancel()
                outcome = job.outcome
                assert outcome is not None
                outcome.error = FriendlyError(f"The segmentation did not finish within {timeout:.0f} s and was stopped.")
                return RunResult(outcome)
            if outcome.state is not JobState.SUCCEEDED:
                return RunResult(outcome)
            return RunResult(outcome, self.import_result(target_node, replace_protected))
        finally:
            self.cleanup()

    # -- importing -----------------------------------------------------------------------------

    def _succeeded(self) -> JobOutcome:
        if self.job is None or self.job.outcome is None or self.job.outcome.state is not JobState.SUCCEEDED:
            raise FriendlyError("There is no finished segmentation to load.")
        return self.job.outcome

    def algorithm_name(self) -> str:
        model = self._succeeded().result.get("model") or {}
        name, version = model.get("name"), model.get("version")
        return " ".join(p for p in ("MoME", name, version) if p)

    def empty_structures(self) -> list[str]:
        return [c.get("name", "") for c in self._succeeded().result.get("classes", []) if c.get("voxels") == 0]

    def plan_import(self, target_node: Any | None) -> segmentation_io.ImportPlan:
        outcome = self._succeeded()
        return segmentation_io.plan_import(self.scene, outcome.segmentation_path, target_node)

    def import_result(self, target_node: Any | None, replace_protected: bool = False) -> segmentation_io.ImportReport:
        outcome = self._succeeded()
        return segmentation_io.import_segmentation(
            self.scene, outcome.segmentation_path, self.volume_node, target_node,
            replace_protected=replace_protected, algorithm_name=self.algorithm_name(),
            empty_names=self.empty_structures(),
        )

    def cleanup(self) -> None:
        """Remove the temporary folder (input copy and outputs)."""
        if self.job is not None and self.job.running:
            self.job.cancel()
        if self.session_dir is not None:
            shutil.rmtree(self.session_dir, ignore_errors=True)
        self.session_dir = None


def summary(outcome: JobOutcome, report: segmentation_io.ImportReport | None) -> str:
    """The status line after a run, e.g. "Segmented 5 structures in 42 s on GPU."."""
    if outcome.state is JobState.CANCELLED:
        return f"Cancelled after {outcome.seconds:.0f} s; nothing was changed."
    if outcome.state is JobState.FAILED:
        return f"Failed after {outcome.seconds:.0f} s: {outcome.error.message if outcome.error else 'unknown error'}"
    device = str(outcome.result.get("device", "")).lower()
    where = " on GPU" if device.startswith("cuda") else (" on CPU" if device == "cpu" else "")
    n = len(outcome.result.get("classes", []))
    text = f"Segmented {n} structure{'s' if n != 1 else ''} in {_duration(outcome.seconds)}{where}."
    if report is not None:
        if report.replaced:
            text += f" Replaced: {', '.join(report.replaced)}."
        if report.kept_edited:
            text += f" Kept your edited: {', '.join(report.kept_edited)}."
        if report.empty:
            text += f" Nothing found for: {', '.join(report.empty)}."
    return text


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    return f"{int(seconds // 60)} min {int(seconds % 60):02d} s"
