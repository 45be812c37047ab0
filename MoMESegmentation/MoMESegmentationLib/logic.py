"""``MoMESegmentationLogic``: segment a volume node, from the panel or from a script, without Qt.

It writes the volume to a private temporary folder, runs ``mome segment`` in the background
(:mod:`.segmentation_job`) and imports the result (:mod:`.segmentation_io`). The panel drives it
step by step (``start``/``poll``/``plan_import``/``import_result``, so it can ask before replacing
edited segments); scripts call the blocking :meth:`MoMESegmentationLogic.segment`::

    logic = slicer.util.getModuleLogic("MoMESegmentation")      # or MoMESegmentation.MoMESegmentationLogic()
    segmentation = logic.segment(volumeNode, "liver, spleen", model=None, device="auto", fast=False)
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import segmentation_io
from .dependencies import DependencyManager
from .errors import FriendlyError
from .parameters import SegmentationParameters
from .process import EngineEvent, ProcessRunner
from .segmentation_job import JobOutcome, JobRequest, JobState, SegmentationJob


@dataclass
class RunResult:
    outcome: JobOutcome
    report: segmentation_io.ImportReport | None = None


class MoMESegmentationLogic:
    """Segmentation logic over an MRML ``scene``; every collaborator can be injected.

    Created with no arguments inside Slicer, it uses ``slicer.mrmlScene``, ``PythonSlicer``, Slicer's
    startup environment, its temporary folder and the dependency installer
    (``slicer_services.segmentation_logic_defaults``). Tests pass a ``vtkMRMLScene`` and
    ``sys.executable`` instead.
    """

    def __init__(self, scene: Any = None, runner: ProcessRunner | None = None, command: Sequence[str] | None = None,
                 engine_root: str | os.PathLike[str] | None = None, environment: Mapping[str, str] | None = None,
                 temp_root: str | os.PathLike[str] | None = None, dependencies: DependencyManager | None = None):
        if scene is None:  # inside Slicer
            from .slicer_services import segmentation_logic_defaults

            defaults = segmentation_logic_defaults()
            scene, command, engine_root, environment, temp_root, dependencies = (
                defaults["scene"], command or defaults["command"], engine_root or defaults["engine_root"],
                environment or defaults["environment"], temp_root or defaults["temp_root"],
                dependencies or defaults["dependencies"])
        self.scene = scene
        self.runner = runner
        self.command = list(command) if command is not None else None
        self.engine_root = engine_root
        self.environment = environment
        self.temp_root = temp_root
        self.dependencies = dependencies
        self.job: SegmentationJob | None = None
        self.volume_node: Any = None
        self.session_dir: Path | None = None
        self._result: segmentation_io.SegmentationResult | None = None

    # -- scripting -----------------------------------------------------------------------------

    def segment(self, volume_node: Any, prompts: str, model: str | None = None, device: str = "auto",
                fast: bool = False, segmentation_node: Any = None, allow_free_text: bool = False,
                replace_edited: bool = False, timeout: float | None = None,
                on_event: Callable[[EngineEvent], None] | None = None) -> Any:
        """Segment ``prompts`` ("liver, spleen; left kidney") in ``volume_node`` and return the
        segmentation node: a new one, or ``segmentation_node`` updated (segments of the same name
        replaced, others kept; segments edited by hand are kept unless ``replace_edited``).

        Blocks until done. Installs missing Python packages first (asking once) when a dependency
        installer is set, as it is inside Slicer. Raises :class:`FriendlyError` (its ``message`` says
        what to do, ``details`` has the engine's log) when the run fails, is cancelled or times out.
        """
        parameters = SegmentationParameters(prompts=prompts, model=model, device=device, fast=fast,
                                            allow_free_text=allow_free_text)
        if self.dependencies is not None:
            self.dependencies.ensure()
        result = self.run(volume_node, parameters, segmentation_node, replace_edited, timeout, on_event)
        if result.report is None:
            error = result.outcome.error or FriendlyError("The segmentation was cancelled; nothing was changed.")
            raise error
        return result.report.segmentation_node

    def load_sample(self, name: str = "example_ct") -> Any:
        """Load a sample CT shipped with MoME (``mome sample --list``) as a volume node."""
        from mome.resource_files import sample

        found = sample(name)
        return segmentation_io.read_volume(self.scene, found.path, found.title)

    # -- step by step (the panel) --------------------------------------------------------------

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
        """Start, wait and import in one call; the outcome says how it ended (never raises for a
        failed run)."""
        job = self.start(volume_node, parameters)
        try:
            outcome = job.wait(timeout, on_event=on_event)
            if outcome is None:
                job.cancel()
                outcome = job.outcome
                assert outcome is not None
                outcome.state = JobState.FAILED
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

    def _result_file(self) -> segmentation_io.SegmentationResult:
        """The result, read into the scene once for planning and importing."""
        if self._result is None:
            self._result = segmentation_io.SegmentationResult(self.scene, self._succeeded().segmentation_path)
        return self._result

    def algorithm_name(self) -> str:
        model = self._succeeded().result.get("model") or {}
        name, version = model.get("name"), model.get("version")
        return " ".join(p for p in ("MoME", name, version) if p)

    def empty_structures(self) -> list[str]:
        return [c.get("name", "") for c in self._succeeded().result.get("classes", []) if c.get("voxels") == 0]

    def plan_import(self, target_node: Any | None) -> segmentation_io.ImportPlan:
        return self._result_file().plan(target_node)

    def import_result(self, target_node: Any | None, replace_protected: bool = False) -> segmentation_io.ImportReport:
        return self._result_file().import_into(
            self.volume_node, target_node, replace_protected=replace_protected,
            algorithm_name=self.algorithm_name(), empty_names=self.empty_structures(),
        )

    def cleanup(self) -> None:
        """Remove the temporary folder (input copy and outputs) and the hidden result node."""
        if self.job is not None and self.job.running:
            self.job.cancel()
        if self._result is not None:
            self._result.close()
            self._result = None
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
