"""MoME Training: build a dataset from Slicer segmentations, fine-tune a MoME model in a background
process, and manage the installed model versions.

The logic modules take the MRML scene and nodes as arguments and never import Qt, so they run
under ``slicer-core`` in plain pytest; ``widget`` is the only Qt file. ``logic.MoMETrainingLogic``
is the module's logic (``slicer.util.getModuleLogic("MoMETraining")``). It uses MoMESegmentationLib
(the MoMETraining module depends on the MoMESegmentation module, installed with it in the same
extension) for the engine process runner, the dependency installer and Slicer's services.
"""

#: Reloaded in this order by the module's Reload button (dependencies first).
SUBMODULES = ("presets", "training_process", "training_plot", "dataset_builder", "model_store_logic", "logic",
              "widget")

from .dataset_builder import BuildOptions, CaseSource, DatasetBuilder, DatasetReport, Problem
from .model_store_logic import Comparison, ComparisonRun, ModelStoreLogic
from .presets import FULL_RETRAIN, PRESETS, QUICK_ADAPT, TrainingPreset
from .training_process import State, TrainingEvent, TrainingProcess, TrainingRequest, training_event

__all__ = [
    "FULL_RETRAIN",
    "PRESETS",
    "QUICK_ADAPT",
    "BuildOptions",
    "CaseSource",
    "Comparison",
    "ComparisonRun",
    "DatasetBuilder",
    "DatasetReport",
    "ModelStoreLogic",
    "Problem",
    "State",
    "TrainingEvent",
    "TrainingPreset",
    "TrainingProcess",
    "TrainingRequest",
    "training_event",
]
