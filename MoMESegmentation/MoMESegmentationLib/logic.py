"""``MoMESegmentationLogic``: segment a volume node, from the panel or from a script, without Qt.

It writes the volume to a private temporary folder, runs ``mome segment`` in the background
(:mod:`.segmentation_job`) and imports the result (:mod:`.segmentation_io`). The panel drives it
step by step (``check_structures`` as the user types, ``confirm_run``/``start``/``poll``/
``plan_import``/``import_result``, so it can ask before segmenting a volume that does not look like
CT or replacing edited segments); scripts call the blocking :meth:`MoMESegmentationLogic.segment`::

    logic = slicer.util.getModuleLogic("MoMESegmentation")      # or MoMESegmentation.MoMESegmentationLogic()
    segmentation = logic.segment(volumeNode, "liver, stomach, aorta", model=None, device="auto", fast=False)

Before anything starts, as ``mome segment`` itself does: structures the model would only guess
(its figures say it has not learned them, or it was never trained on them: zero-shot) are refused
unless opted in (``allow_not_learned``, ``allow_zero_shot``), and a volume that does not look like
CT in Hounsfield units is refused unless ``skip_input_check`` (damaged volumes always are). Both
raise errors that say what to do (:class:`~.errors.RefusedStructuresError`,
:class:`~.errors.InputCheckError`).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from . import segmentation_io, targets
from .dependencies import DependencyManager
from .errors import FriendlyError, InputCheckError, RefusedStructuresError
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
                fast: bool = False, segmentation_node: Any = None, allow_not_learned: bool = False,
                allow_zero_shot: bool = False, skip_input_check: bool = False, replace_edited: bool = False,
                timeout: float | None = None, on_event: Callable[[EngineEvent], None] | None = None) -> Any:
        """Segment ``prompts`` ("liver, stomach; aorta") in ``volume_node`` and return the
        segmentation node: a new one, or ``segmentation_node`` updated (segments of the same
        structure replaced, others kept; segments edited by hand are kept unless ``replace_edited``).

        Refused before anything runs (:class:`RefusedStructuresError`, listing each structure with
        its figures): structures the model has not learned, unless ``allow_not_learned``, and
        structures it was never trained on (zero-shot, including names MoME does not know), unless
        ``allow_zero_shot``; opted-in ones come back named "spleen (not learned)" / "… (zero-shot)".
        A volume that does not look like CT in Hounsfield units raises :class:`InputCheckError`
        unless ``skip_input_check`` (a damaged one always does).

        Blocks until done. Installs missing Python packages first (asking once) when a dependency
        installer is set, as it is inside Slicer. Raises :class:`FriendlyError` (its ``message`` says
        what to do, ``details`` has the engine's log) when the run fails, is cancelled or times out.
        """
        parameters = SegmentationParameters(prompts=prompts, model=model, device=device, fast=fast,
                                            allow_not_learned=allow_not_learned, allow_zero_shot=allow_zero_shot,
                                            skip_input_check=skip_input_check)
        try:
            self.check_run(volume_node, parameters)  # before installing anything
            if self.dependencies is not None:
                self.dependencies.ensure()
            result = self.run(volume_node, parameters, segmentation_node, replace_edited, timeout, on_event)
            if result.report is None:
                raise result.outcome.error or FriendlyError("The segmentation was cancelled; nothing was changed.")
        except (RefusedStructuresError, InputCheckError) as exc:
            raise exc.for_script() from None  # a script overrides with keywords, not check boxes
        return result.report.segmentation_node

    def load_sample(self, name: str = "example_ct") -> Any:
        """Load a sample CT shipped with MoME (``mome sample --list``) as a volume node."""
        from mome.resource_files import sample

        found = sample(name)
        return segmentation_io.read_volume(self.scene, found.path, found.title)

    # -- checks before a run (the panel as the user types, and every start) ---------------------

    def model_metadata(self, model: str | None) -> tuple[dict[str, Any] | None, str]:
        """The ``model.json`` of the model ``mome segment --model model`` would use (None: the active
        model, else the bundled default) and "", or None and why it cannot be read."""
        try:
            from mome.hub import ModelStore, resolve_model
            from mome.package import read_package_json

            # The store the engine process will look in: its environment decides where it is.
            home = (self.environment or {}).get("MOME_HOME")
            store = ModelStore(Path(home).expanduser() / "models") if home else ModelStore()
            return read_package_json(resolve_model(model, store=store)), ""
        except Exception as exc:  # noqa: BLE001 - a missing or broken model is the engine's to report in full
            return None, f"{exc}"

    def check_structures(self, parameters: SegmentationParameters, vocabulary: Any = None) -> targets.TargetCheck:
        """What ``parameters.prompts`` asks of the selected model: each structure's reliability and
        what the engine would refuse with these opt-ins (the panel shows it as the user types)."""
        meta, problem = self.model_metadata(parameters.model)
        return targets.check_targets(parameters.prompts, vocabulary, parameters.allow_zero_shot,
                                     parameters.allow_not_learned, meta, problem)

    def input_check(self, volume_node: Any) -> Any:
        """The engine's plausibility check (``mome.io.plausibility.InputCheck``) on the volume's voxels."""
        return segmentation_io.check_ct_values(volume_node)

    def check_run(self, volume_node: Any, parameters: SegmentationParameters) -> None:
        """Raise what would keep ``mome segment`` from running, before it is started: invalid
        settings, a volume the engine cannot take, refused structures (:class:`RefusedStructuresError`)
        and, unless ``parameters.skip_input_check`` allows an overridable one, a failed input check
        (:class:`InputCheckError`). Unknown names and a missing model are left to the engine,
        whose messages carry the suggestions."""
        problems = parameters.validate()
        if problems:
            raise FriendlyError(" ".join(problems))
        segmentation_io.check_input_volume(volume_node)
        check = self.check_structures(parameters)
        if check.refused:
            raise RefusedStructuresError([{"key": r.key, "name": r.name, **r.to_dict()} for r in check.refused],
                                         check.model, check.offer, check.zero_shot_possible)
        values = self.input_check(volume_node)
        if not values.ok and not (parameters.skip_input_check and values.overridable):
            raise InputCheckError(values.to_dict())

    def confirm_run(self, volume_node: Any, parameters: SegmentationParameters,
                    segment_anyway: Callable[[InputCheckError], bool] | None = None) -> SegmentationParameters | None:
        """:meth:`check_run`, asking ``segment_anyway`` (the panel's dialog) whether to segment a
        volume that fails an overridable input check: the parameters to start with (with
        ``skip_input_check`` when the answer was yes), or None when the answer was no. Anything
        else that fails is raised."""
        try:
            self.check_run(volume_node, parameters)
        except InputCheckError as exc:
            if not exc.overridable or segment_anyway is None:
                raise
            if not segment_anyway(exc):
                return None
            parameters = replace(parameters, skip_input_check=True)
            self.check_run(volume_node, parameters)
        return parameters

    # -- step by step (the panel) --------------------------------------------------------------

    def start(self, volume_node: Any, parameters: SegmentationParameters) -> SegmentationJob:
        if self.job is not None and self.job.running:
            raise FriendlyError("A segmentation is already running; cancel it or wait until it finishes.")
        self.check_run(volume_node, parameters)
        self.cleanup()
        self.session_dir = Path(tempfile.mkdtemp(prefix="MoME-", dir=self.temp_root))
        input_path = segmentation_io.write_volume_for_engine(volume_node, self.session_dir / "input.nrrd")
        self.volume_node = volume_node
        request = JobRequest(
            input_path=input_path, prompts=parameters.prompts, model=parameters.model,
            device=parameters.device, fast=parameters.fast, allow_not_learned=parameters.allow_not_learned,
            allow_zero_shot=parameters.allow_zero_shot, skip_input_check=parameters.skip_input_check,
            input_label=volume_node.GetName(),
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
        # Segment names: opted-in structures are named with their mark ("spleen (not learned)").
        return [_segment_name(c) for c in self._succeeded().result.get("classes", []) if c.get("voxels") == 0]

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
    classes = outcome.result.get("classes", [])
    n = len(classes)
    text = f"Segmented {n} structure{'s' if n != 1 else ''} in {_duration(outcome.seconds)}{where}."
    doubtful = [f"{c['name']} ({c.get('status_label') or c['status']})" for c in classes
                if c.get("status") in ("weak", "not_validated")]
    guesses = [_segment_name(c) for c in classes if c.get("status") in ("not_learned", "zero_shot")]
    if doubtful:
        text += f" Not validated as accurate: {', '.join(doubtful)}."
    if guesses:
        text += f" Guesses you asked for: {', '.join(guesses)}."
    check = outcome.result.get("input_check") or {}
    if check and not check.get("ok", True):
        text += " Segmented although the volume does not look like a CT in Hounsfield units."
    if report is not None:
        if report.replaced:
            text += f" Replaced: {', '.join(report.replaced)}."
        if report.kept_edited:
            text += f" Kept your edited: {', '.join(report.kept_edited)}."
        if report.empty:
            text += f" Nothing found for: {', '.join(report.empty)}."
    return text


def structure_lines(outcome: JobOutcome) -> list[tuple[str, str]]:
    """After a run, one (level, text) line per structure for Details: the segment's name, its status
    and the figures behind it, e.g. "liver — weak (Dice 0.66 on 1 patient never seen in training ...)"."""
    lines = []
    for c in outcome.result.get("classes", []):
        status = c.get("status")
        text = _segment_name(c)
        if status:
            text += f" — {c.get('status_label') or status}"
            if c.get("evidence"):
                text += f" ({c['evidence']})"
        if c.get("voxels") == 0:
            text += "; nothing found"
        level = targets.OK if status == "validated" else (targets.NOTE if status is None else targets.CAUTION)
        lines.append((level, text))
    return lines


def _segment_name(entry: Mapping[str, Any]) -> str:
    return str(entry.get("display_name") or entry.get("name", ""))


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    return f"{int(seconds // 60)} min {int(seconds % 60):02d} s"
