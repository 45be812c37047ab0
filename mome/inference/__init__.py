"""Inference: CT in, one mask per prompted structure out, on exactly the CT's voxel grid.

``preprocess`` (orientation, spacing, HU window, body crop) → ``sliding`` (MONAI sliding-window
inference) → ``postprocess`` (anatomical clean-up) → ``resample_back`` (onto the input grid);
``engine.Segmenter`` runs them in order with progress, cancellation and GPU fallbacks.
"""

from .device import DeviceUnavailableError, resolve_device
from .engine import SegmentationResult, Segmenter
from .errors import Cancelled, ClassNotSupportedError, ModelNotFoundError
from .model_source import DEFAULT_MODEL, locate_model
from .postprocess import PostprocessOptions
from .preprocess import PreparedImage, prepare_image
from .targets import TargetClass, resolve_targets

__all__ = [
    "DEFAULT_MODEL",
    "Cancelled",
    "ClassNotSupportedError",
    "DeviceUnavailableError",
    "ModelNotFoundError",
    "PostprocessOptions",
    "PreparedImage",
    "SegmentationResult",
    "Segmenter",
    "TargetClass",
    "locate_model",
    "prepare_image",
    "resolve_device",
    "resolve_targets",
]
