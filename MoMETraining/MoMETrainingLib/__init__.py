"""MoME Training: build a dataset from Slicer segmentations, fine-tune a MoME model in a background
process, and manage the installed model versions.

The logic modules take the MRML scene and nodes as arguments and never import Qt, so they run
under ``slicer-core`` in plain pytest; ``widget`` is the only Qt file.
"""

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
