"""``MoMETrainingLogic``: fine-tune a MoME model on segmentations in the scene, from the panel or a script.

It ties the dataset builder, the background training process and the model store together. The
panel drives the parts step by step (build, start/poll/stop/resume, install); scripts call the
blocking :meth:`MoMETrainingLogic.train`::

    logic = slicer.util.getModuleLogic("MoMETraining")            # or MoMETraining.MoMETrainingLogic()
    model = logic.train([(ctNode, segmentationNode), ...], base_model="mome-mini", preset="quick")
    logic.store.set_active(model.name, model.version)               # MoME Segmentation now uses it
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from MoMESegmentationLib.dependencies import DependencyManager
from MoMESegmentationLib.errors import FriendlyError

from .dataset_builder import BuildOptions, CaseSource, DatasetBuilder, DatasetReport
from .model_store_logic import ModelStoreLogic
from .presets import preset as find_preset
from .training_process import State, TrainingEvent, TrainingProcess, TrainingRequest


class MoMETrainingLogic:
    """Training logic over an MRML ``scene``; every collaborator can be injected.

    Created with no arguments inside Slicer, it uses ``slicer.mrmlScene``, the Segmentations module
    logic, ``PythonSlicer`` with the bundled engine, Slicer's startup environment and the dependency
    installer (``MoMESegmentationLib.slicer_services``). Tests pass a ``vtkMRMLScene`` instead.
    """

    def __init__(self, scene: Any = None, segmentations_logic: Any = None, store_logic: ModelStoreLogic | None = None,
                 python: str | None = None, engine_root: str | os.PathLike[str] | None = None,
                 environment: Mapping[str, str] | None = None, dependencies: DependencyManager | None = None,
                 runner: Any = None):
        if scene is None:  # inside Slicer
            from MoMESegmentationLib import slicer_services

            process = slicer_services.engine_process_defaults()
            scene, segmentations_logic = slicer_services.scene(), slicer_services.segmentations_logic()
            python, engine_root = python or process["python"], engine_root or process["engine_root"]
            environment = environment or process["environment"]
            dependencies = dependencies or slicer_services.dependency_manager()
        self.scene = scene
        self.builder = DatasetBuilder(scene, segmentations_logic=segmentations_logic)
        self.store = store_logic or ModelStoreLogic()
        self.python = python
        self.engine_root = str(engine_root) if engine_root is not None else None
        self.environment = dict(environment) if environment is not None else None
        self.dependencies = dependencies
        self.process = TrainingProcess(runner, base_env=self.environment)

    def build_dataset(self, pairs: Sequence[tuple[Any, Any]], work_dir: str | os.PathLike[str],
                      folder: str | os.PathLike[str] | None = None, holdout: int | None = None) -> DatasetReport:
        """A training dataset from (volume node or None, segmentation node) pairs and/or a folder of
        ``.seg.nrrd`` files; every problem is in the report."""
        options = BuildOptions() if holdout is None else BuildOptions(holdout=holdout)
        sources = [CaseSource(segmentation, volume) for volume, segmentation in pairs]
        return self.builder.build(sources, Path(work_dir) / "data", folder=folder, options=options)

    def request(self, report: DatasetReport, base_model: str, preset: str = "quick", steps: int | None = None,
                lr: float | None = None, device: str = "auto", name: str | None = None) -> TrainingRequest:
        """The training run for a built dataset: a new model name and version that never overwrite the
        base (``ModelStoreLogic.new_model_version``)."""
        if not report.ok:
            raise FriendlyError("The dataset has no usable training case: "
                                + " ".join(p.message for p in report.errors[:5]))
        base_name, _, base_version = base_model.partition("@")
        if not base_version:
            base_version = next((b.version for b in self.store.base_models() if b.name == base_name), "")
        new_name, new_version = self.store.new_model_version(base_name, base_version, name)
        chosen = find_preset(preset).with_overrides(steps=steps, lr=lr)
        return TrainingRequest(
            base_model=str(self.store.path(base_name, base_version or None)), manifest=str(report.manifest_path),
            run_dir=str(report.work_dir.parent / f"run-{new_name}-{new_version}"), preset=chosen, name=new_name,
            version=new_version, device=device, python=self.python or TrainingRequest.python,
            engine_root=self.engine_root)

    def train(self, pairs: Sequence[tuple[Any, Any]], base_model: str = "mome-mini", preset: str = "quick",
              steps: int | None = None, lr: float | None = None, device: str = "auto", name: str | None = None,
              work_dir: str | os.PathLike[str] | None = None, folder: str | os.PathLike[str] | None = None,
              activate: bool = False, timeout: float | None = None,
              on_event: Callable[[TrainingEvent], None] | None = None) -> Any:
        """Build the dataset, fine-tune ``base_model`` (``name@version`` or name) in the background,
        wait, and install the result as a new model version (``activate``: MoME Segmentation uses it
        from now on). Returns the installed model (``.name``, ``.version``, ``.spec``). Raises
        :class:`FriendlyError` with every problem of the dataset, or the engine's error."""
        if self.dependencies is not None:
            self.dependencies.ensure()
        work = Path(work_dir) if work_dir is not None else Path.cwd() / time.strftime("MoME-training-%Y%m%d-%H%M%S")
        report = self.build_dataset(pairs, work, folder)
        request = self.request(report, base_model, preset, steps, lr, device, name)
        self.process.on_event = on_event
        self.process.start(request)
        self.process.wait(timeout)
        if self.process.state in (State.RUNNING, State.STOPPING):
            self.process.kill()
            raise FriendlyError(f"Training did not finish within {timeout:.0f} s and was stopped; "
                                f"it can be resumed from {request.run_dir}.")
        if self.process.state is not State.FINISHED or not self.process.package:
            raise FriendlyError(f"Training failed: {self.process.error or self.process.state.value}.",
                                "\n".join(self.process.log[-20:]))
        model = self.store.install_trained(self.process.package, activate=activate)
        return model
