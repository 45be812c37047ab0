"""Choosing the compute device and its mixed precision, and falling back gracefully when the GPU
runs out of memory. Inference and training both use these."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import nullcontext
from typing import TypeVar

import torch

T = TypeVar("T")

DEVICE_CHOICES = ("auto", "cpu", "cuda")


class DeviceUnavailableError(RuntimeError):
    """The requested device does not exist on this machine."""


def resolve_device(name: str | torch.device = "auto") -> torch.device:
    """``auto`` = the first CUDA GPU when PyTorch sees one, else the CPU.

    Apple's MPS is not chosen automatically: several 3D operations the network needs are missing
    or slower there than on the CPU.
    """
    if isinstance(name, torch.device):
        return name
    name = name.lower()
    if name == "auto":
        return torch.device("cuda") if torch.cuda.is_available() else torch.device("cpu")
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise DeviceUnavailableError(
                "--device cuda was requested but PyTorch sees no CUDA GPU (no NVIDIA GPU, a driver "
                f"problem, or a CPU-only PyTorch build: torch {torch.__version__}). Use --device cpu or auto"
            )
        return torch.device(name)
    if name == "cpu":
        return torch.device("cpu")
    raise DeviceUnavailableError(f"unknown device {name!r}; choose one of {', '.join(DEVICE_CHOICES)}")


def amp_dtype(device: torch.device, amp: str = "auto") -> torch.dtype | None:
    """The autocast dtype for ``device``: None (full precision) on the CPU or with ``amp="off"``,
    float16 with ``"fp16"``, else bf16 on GPUs that support it and fp16 on older ones.

    CPU autocast is not used: bf16 convolutions are slower than fp32 on most CPUs.
    """
    if device.type != "cuda" or amp == "off":
        return None
    if amp == "fp16":
        return torch.float16
    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16


def autocast_for(device: torch.device, amp: str = "auto") -> torch.autocast | nullcontext:
    """The autocast context of :func:`amp_dtype` (a no-op context for full precision)."""
    dtype = amp_dtype(device, amp)
    return nullcontext() if dtype is None else torch.autocast(device.type, dtype=dtype)


def is_out_of_memory(exc: BaseException) -> bool:
    """CUDA OOM, as raised by current PyTorch (``torch.OutOfMemoryError``) or older builds."""
    return isinstance(exc, torch.OutOfMemoryError) or (
        isinstance(exc, RuntimeError) and "out of memory" in str(exc).lower()
    )


def run_with_oom_fallback(
    attempt: Callable[[torch.device, int], T],
    device: torch.device,
    sw_batch_size: int,
    warnings: list[str],
    on_cpu_fallback: Callable[[], None] | None = None,
) -> tuple[T, torch.device]:
    """Call ``attempt(device, sw_batch_size)``; on CUDA out-of-memory halve the batch and retry,
    and when a single window does not fit, retry on the CPU. Every fallback is recorded in
    ``warnings``. Returns the result and the device that produced it.

    ``on_cpu_fallback`` moves the model to the CPU before the last retry.
    """
    while True:
        try:
            return attempt(device, sw_batch_size), device
        except (torch.OutOfMemoryError, RuntimeError) as exc:
            if device.type != "cuda" or not is_out_of_memory(exc):
                raise
            if torch.cuda.is_available():
                torch.cuda.empty_cache()
            if sw_batch_size > 1:
                smaller = sw_batch_size // 2
                warnings.append(
                    f"GPU out of memory with {sw_batch_size} windows per batch; retried with {smaller}."
                )
                sw_batch_size = smaller
                continue
            warnings.append(
                "GPU out of memory even for a single window; the segmentation ran on the CPU instead "
                "(slower). Close other GPU programs or use --fast to run on the GPU."
            )
            device, sw_batch_size = torch.device("cpu"), 1
            if on_cpu_fallback is not None:
                on_cpu_fallback()
