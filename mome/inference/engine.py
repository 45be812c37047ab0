"""The inference engine: a SimpleITK CT and a list of structures in, one mask per structure out,
on exactly the CT's voxel grid.

    segmenter = Segmenter(ModelPackage.load(path), device="auto", fast=False)
    result = segmenter.segment(image, ["liver", "spleen"], progress=progress, cancel=event)
    result.masks  # list of K bool (z, y, x) arrays on the input grid

Stages (progress ``stage`` names): ``prepare`` → ``inference`` (one update per window) →
``postprocess`` → ``resample``. ``cancel`` (a ``threading.Event``) is checked between windows and
stages; setting it raises :class:`Cancelled`.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import SimpleITK as sitk
import torch
from torch import nn

from ..imaging import from_network_layout
from ..package import ModelPackage
from ..progress import NullProgress, Progress
from ..vocabulary import SegmentDescriptor, Vocabulary
from .device import resolve_device, run_with_oom_fallback
from .errors import Cancelled
from .postprocess import PostprocessOptions, constrain_probabilities, postprocess_masks
from .preprocess import PreparedImage, prepare_image
from .resample_back import mask_on_source, probabilities_on_source
from .sliding import FAST_OVERLAP, FULL_OVERLAP, choose_sw_batch_size, sliding_window_probabilities
from .targets import ClassLike, TargetClass, class_embeddings, resolve_targets

# Share of the progress bar each stage takes (inference dominates on any device).
_STAGE_SPAN = {"prepare": (0.0, 0.05), "inference": (0.05, 0.9), "postprocess": (0.9, 0.93), "resample": (0.93, 1.0)}


@dataclass
class SegmentationResult:
    """Masks are (z, y, x) boolean arrays on the input image's grid, one per class, in class order."""

    masks: list[np.ndarray]
    classes: list[TargetClass]
    descriptors: list[SegmentDescriptor]
    probabilities: list[np.ndarray] | None  # uint8 (×255) on the input grid, when asked for
    timings: dict[str, float]
    device_used: str
    warnings: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # what post-processing changed

    @property
    def keys(self) -> list[str]:
        return [c.key for c in self.classes]


class Segmenter:
    """Segments CT images with one model package; the network is built once and reused.

    ``fast``: the package's ``fast_spacing`` and windows overlapping by :data:`FAST_OVERLAP` instead of
    :data:`FULL_OVERLAP`, unless ``overlap`` is given.
    ``model`` replaces the package's network (any module with ``forward(image B×1×P³, text K×T) →
    logits B×K×P³``), and ``text_encoder`` the package's text encoder for untrained classes; both
    exist for tests and benchmarks.
    """

    def __init__(self, package: ModelPackage, device: str | torch.device = "auto", fast: bool = False,
                 overlap: float | None = None, postprocess: PostprocessOptions | None = None,
                 sw_batch_size: int | None = None, keep_probabilities: bool = False,
                 model: nn.Module | None = None, text_encoder: Any = None, vocabulary: Vocabulary | None = None):
        if overlap is None:  # fast mode: the package's coarser grid and fewer windows
            overlap = FAST_OVERLAP if fast else FULL_OVERLAP
        if not 0 <= overlap < 1:
            raise ValueError(f"overlap must be in [0, 1), got {overlap}")
        self.package = package
        self.device = resolve_device(device)
        self.fast = fast
        self.overlap = overlap
        self.postprocess = postprocess or PostprocessOptions()
        self.sw_batch_size = sw_batch_size
        self.keep_probabilities = keep_probabilities
        self.text_encoder = text_encoder
        self.vocabulary = vocabulary
        started = time.perf_counter()
        self.model = (model or package.build_model("cpu")).to(self.device).eval()
        self.load_seconds = time.perf_counter() - started

    @property
    def patch_size(self) -> tuple[int, int, int]:
        return tuple(int(p) for p in self.package.preprocessing.patch_size)  # type: ignore[return-value]

    def segment(self, image: sitk.Image, classes: Sequence[ClassLike], progress: Progress | None = None,
                cancel: threading.Event | None = None) -> SegmentationResult:
        progress = progress or NullProgress()
        warnings: list[str] = []
        timings: dict[str, float] = {}
        started = time.perf_counter()

        def check_cancel() -> None:
            if cancel is not None and cancel.is_set():
                raise Cancelled("segmentation cancelled")

        def report(stage: str, fraction: float, message: str = "", **extra: Any) -> None:
            low, high = _STAGE_SPAN[stage]
            progress.update(stage, low + (high - low) * fraction, message, **extra)

        targets = resolve_targets(self.package, classes, self.vocabulary)
        text = class_embeddings(self.package, targets, self.text_encoder, warnings)

        check_cancel()
        report("prepare", 0.0, "resampling and cropping the CT")
        clock = time.perf_counter()
        prepared = prepare_image(image, self.package.preprocessing, fast=self.fast)
        timings["prepare"] = time.perf_counter() - clock
        check_cancel()

        clock = time.perf_counter()
        probabilities, device_used = self._infer(prepared, text, report, check_cancel, warnings)
        timings["inference"] = time.perf_counter() - clock

        check_cancel()
        report("postprocess", 0.0, "cleaning up masks")
        clock = time.perf_counter()
        level = self.postprocess.level
        masks = [p >= level for p in probabilities]
        masks, notes = postprocess_masks(masks, targets, prepared.grid, self.postprocess,
                                         midline=float(prepared.body_center[0]))
        probabilities = [constrain_probabilities(p, m, level) for p, m in zip(probabilities, masks)]
        del masks
        timings["postprocess"] = time.perf_counter() - clock

        clock = time.perf_counter()
        out_masks, out_probabilities = [], []
        for k, target in enumerate(targets):
            check_cancel()
            report("resample", k / len(targets), f"mapping {target.name} back to the CT grid")
            out_masks.append(mask_on_source(probabilities[k], prepared.grid, prepared.source_grid, level))
            if self.keep_probabilities:
                out_probabilities.append(probabilities_on_source(probabilities[k], prepared.grid, prepared.source_grid))
            probabilities[k] = np.empty(0, dtype=np.uint8)  # free as we go
        timings["resample"] = time.perf_counter() - clock
        timings["total"] = time.perf_counter() - started
        report("resample", 1.0, "done")
        return SegmentationResult(
            masks=out_masks,
            classes=targets,
            descriptors=[t.descriptor for t in targets],
            probabilities=out_probabilities if self.keep_probabilities else None,
            timings={k: round(v, 3) for k, v in timings.items()},
            device_used=str(device_used),
            warnings=warnings,
            notes=notes,
        )

    def _infer(self, prepared: PreparedImage, text: torch.Tensor, report, check_cancel,
               warnings: list[str]) -> tuple[list[np.ndarray], torch.device]:
        """Sliding-window inference with the OOM fallbacks; uint8 (z, y, x) probabilities per class."""

        def on_window(done: int, total: int) -> None:
            report("inference", done / total, f"window {done}/{total}", window=done, windows=total)
            check_cancel()

        def attempt(device: torch.device, sw_batch_size: int) -> torch.Tensor:
            check_cancel()
            report("inference", 0.0, f"running the model on {device.type}")
            return sliding_window_probabilities(
                self.model, prepared.tensor, text, self.patch_size, self.overlap, device, sw_batch_size, on_window
            )

        def to_cpu() -> None:
            self.model.to("cpu")
            self.device = torch.device("cpu")

        sw = self.sw_batch_size or choose_sw_batch_size(
            self.device, self.patch_size, self.package.config.feature_size, len(text)
        )
        stitched, device_used = run_with_oom_fallback(attempt, self.device, sw, warnings, to_cpu)
        # Compact as soon as possible: float16 K×X×Y×Z → uint8 (z, y, x) per class, freeing each row.
        out = []
        for k in range(stitched.shape[0]):
            channel = stitched[k].float().mul_(255).round_().to(torch.uint8)
            out.append(np.ascontiguousarray(from_network_layout(channel.numpy())))
        del stitched
        return out, device_used
