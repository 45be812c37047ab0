"""MoME Training: build a dataset from Slicer segmentations, fine-tune a MoME model in a background
process, and manage the installed model versions.

The logic modules take the MRML scene and nodes as arguments and never import Qt, so they run
under ``slicer-core`` in plain pytest; ``widget`` is the only Qt file.
"""

from .dataset_builder import BuildOptions, CaseSource, DatasetBuilder, DatasetReport, Problem
from .model_store_logic import Comparison, ModelStoreLogic
from .presets import FULL_RETRAIN, PRESETS, QUICK_ADAPT, TrainingPreset
from .training_process import (
    State,
    SubprocessRunner,
    TrainingEvent,
    TrainingProcess,
    TrainingRequest,
    parse_line,
)

__all__ = [
    "FULL_RETRAIN",
    "PRESETS",
    "QUICK_ADAPT",
    "BuildOptions",
    "CaseSource",
    "Comparison",
    "DatasetBuilder",
    "DatasetReport",
    "ModelStoreLogic",
    "Problem",
    "State",
    "SubprocessRunner",
    "TrainingEvent",
    "TrainingPreset",
    "TrainingProcess",
    "TrainingRequest",
    "parse_line",
]
