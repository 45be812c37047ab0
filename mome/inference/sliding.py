"""Sliding-window inference over a prepared CT: MONAI ``sliding_window_inference`` with Gaussian
blending, per-window progress and cancellation, and a compact stitched output.

Memory stays bounded: only the prompted classes are computed, windows run on ``device`` (the GPU)
while the stitched K×X×Y×Z probabilities accumulate in host memory, in float16 (MONAI stitches in
the input's dtype and the prepared tensor is float16). Each window's sigmoid is blended, so the
stitched values are probabilities in [0, 1].
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
from monai.data.utils import dense_patch_slices
from monai.inferers import sliding_window_inference
from torch import nn

from .device import autocast_for

#: Window overlap of the full mode: nnU-Net's tile step of half a patch.
FULL_OVERLAP = 0.5
#: Window overlap of the fast mode and of every held-out evaluation (``mome evaluate``, training's
#: validation): a quarter of a patch, so a 3 mm abdomen (122×101×112) needs 12 windows of 64³
#: instead of 27, and fast mode runs the windows the model cards' figures were measured with.
FAST_OVERLAP = 0.25

#: ``on_window(done, total)`` is called after each batch of windows; it may raise to stop the run.
WindowCallback = Callable[[int, int], None]


def window_count(image_size: Sequence[int], patch_size: Sequence[int], overlap: float) -> int:
    """How many windows ``sliding_window_inference`` visits for one image.

    MONAI pads an image smaller than the patch up to the patch, and steps by
    ``int(patch × (1 − overlap))`` (at least 1) except along axes exactly one patch long.
    """
    padded = [max(int(i), int(p)) for i, p in zip(image_size, patch_size)]
    intervals = [p if p == i else max(1, int(p * (1 - overlap))) for i, p in zip(padded, patch_size)]
    return len(dense_patch_slices(padded, list(patch_size), intervals))


class _WindowPredictor:
    """Runs the network on a batch of windows: ``B×1×P³`` → sigmoid probabilities ``B×K×P³`` (float16)."""

    def __init__(self, model: nn.Module, text: torch.Tensor, device: torch.device, total: int,
                 on_window: WindowCallback | None):
        self.model = model
        self.text = text.to(device)
        self.device = device
        self.total = total
        self.done = 0
        self.on_window = on_window

    def __call__(self, windows: torch.Tensor) -> torch.Tensor:
        with autocast_for(self.device):
            logits = self.model(windows.to(self.device, torch.float32), self.text)
        probabilities = torch.sigmoid(logits.float()).to(torch.float16)
        self.done += windows.shape[0]
        if self.on_window is not None:
            self.on_window(min(self.done, self.total), self.total)
        return probabilities


@torch.inference_mode()
def sliding_window_probabilities(
    model: nn.Module,
    image: torch.Tensor,
    text: torch.Tensor,
    patch_size: Sequence[int],
    overlap: float = 0.5,
    device: torch.device | str = "cpu",
    sw_batch_size: int = 1,
    on_window: WindowCallback | None = None,
) -> torch.Tensor:
    """Per-class probabilities for a whole prepared image.

    ``image`` is ``1×1×X×Y×Z`` (float16, host memory), ``text`` the ``K×T`` class embeddings.
    Returns ``K×X×Y×Z`` float16 probabilities in host memory. ``model`` must already be on ``device``.
    """
    if not 0 <= overlap < 1:
        raise ValueError(f"overlap must be in [0, 1), got {overlap}")
    device = torch.device(device)
    total = window_count(image.shape[2:], patch_size, overlap)
    predictor = _WindowPredictor(model, text, device, total, on_window)
    stitched = sliding_window_inference(
        inputs=image,
        roi_size=list(patch_size),
        sw_batch_size=max(1, int(sw_batch_size)),
        predictor=predictor,
        overlap=overlap,
        mode="gaussian",
        sw_device=device,
        device="cpu",
    )
    return stitched[0]


def estimated_window_bytes(patch_size: Sequence[int], feature_size: int, num_classes: int,
                           class_chunk: int = 8, bytes_per_value: int = 2) -> int:
    """A deliberately generous estimate of the GPU memory one window needs under autocast.

    Swin UNETR keeps about ``24 × feature_size`` values per voxel alive at its full-resolution stages
    (encoder, decoder and skip features); the MoME head adds, per chunk of classes, the gates
    (K×N_E) and fused features (K×D) plus the stitched K output channels.
    """
    voxels = math.prod(int(p) for p in patch_size)
    per_voxel = 24 * feature_size + min(num_classes, class_chunk) * (5 + 8) * 2 + 2 * num_classes
    return int(voxels * per_voxel * bytes_per_value)


def choose_sw_batch_size(device: torch.device, patch_size: Sequence[int], feature_size: int,
                         num_classes: int, cpu_batch: int = 1, max_batch: int = 8) -> int:
    """Windows per forward pass: from free GPU memory on CUDA, ``cpu_batch`` (1-2) on CPU.

    Batching windows only pays off on a GPU; on CPU it just raises peak memory.
    """
    if device.type != "cuda":
        return max(1, min(2, cpu_batch))
    free, _total = torch.cuda.mem_get_info(device)
    usable = 0.6 * free  # leave room for the allocator's fragmentation and cuDNN workspaces
    batch = int(usable // max(1, estimated_window_bytes(patch_size, feature_size, num_classes)))
    return max(1, min(max_batch, batch))
