"""Inference: CT in, one mask per prompted structure out, on exactly the CT's voxel grid.

``preprocess`` (orientation, spacing, HU window, body crop) → ``sliding`` (MONAI sliding-window
inference) → ``postprocess`` (anatomical clean-up) → ``resample_back`` (onto the input grid);
``engine.Segmenter`` runs them in order with progress, cancellation and GPU fallbacks.
"""

import importlib
from typing import TYPE_CHECKING

# Where each public name lives. Loaded on first use (PEP 562), so that light users such as the
# model hub or a Slicer panel listing models can import ``mome.inference.errors`` without pulling
# in torch, SimpleITK and the network.
_EXPORTS = {
    "DeviceUnavailableError": "device",
    "resolve_device": "device",
    "SegmentationResult": "engine",
    "Segmenter": "engine",
    "Cancelled": "errors",
    "ClassNotSupportedError": "errors",
    "PostprocessOptions": "postprocess",
    "PreparedImage": "preprocess",
    "prepare_image": "preprocess",
    "TargetClass": "targets",
    "resolve_targets": "targets",
}

if TYPE_CHECKING:  # for type checkers and IDEs: the same names, imported eagerly
    from .device import DeviceUnavailableError, resolve_device
    from .engine import SegmentationResult, Segmenter
    from .errors import Cancelled, ClassNotSupportedError
    from .postprocess import PostprocessOptions
    from .preprocess import PreparedImage, prepare_image
    from .targets import TargetClass, resolve_targets


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "Cancelled",
    "ClassNotSupportedError",
    "DeviceUnavailableError",
    "PostprocessOptions",
    "PreparedImage",
    "SegmentationResult",
    "Segmenter",
    "TargetClass",
    "prepare_image",
    "resolve_device",
    "resolve_targets",
]
