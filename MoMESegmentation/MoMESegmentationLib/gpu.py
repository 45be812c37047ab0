"""Is there enough GPU memory for a run? Checked before starting, as TotalSegmentator does.

Numbers measured with the bundled model (``benchmarks/results/inference-cuda.json``): a
512×512×300 abdominal CT peaks at 3.1 GB allocated, 3.8 GB reserved by PyTorch, plus the CUDA
context. :func:`gpu_advice` is pure (tested with numbers); :func:`query_gpu` reads the device
through PyTorch when it is installed and sees a CUDA GPU.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

GIB = 1024**3
#: Free GPU memory a run needs (measured peak plus the CUDA context, rounded up). Fast mode needs as
#: much: it runs fewer windows of the same size, and the stitched result lies in host memory (both
#: modes peak at 3.09 GB allocated in ``inference-cuda.json``).
NEEDED_BYTES = int(4.5 * GIB)


@dataclass(frozen=True)
class GpuMemory:
    name: str
    free_bytes: int
    total_bytes: int


def query_gpu(torch: Any = None) -> GpuMemory | None:
    """The first CUDA GPU's free and total memory, or None (no PyTorch, no CUDA GPU)."""
    if torch is None:
        try:
            import torch
        except ImportError:
            return None
    try:
        if not torch.cuda.is_available():
            return None
        free, total = torch.cuda.mem_get_info(0)
        return GpuMemory(torch.cuda.get_device_name(0), int(free), int(total))
    except (RuntimeError, AssertionError):  # a broken driver is reported by the run itself
        return None


def gpu_advice(device: str, gpu: GpuMemory | None) -> str | None:
    """A warning to show before the run, or None when the GPU (or the CPU) will do."""
    if device == "cpu":
        return None
    if gpu is None:
        if device == "cuda":
            return ("No CUDA GPU is available to PyTorch here. Choose 'CPU' (or 'Auto') as the device; the CPU "
                    "gives the same result, more slowly.")
        return None
    if gpu.free_bytes >= NEEDED_BYTES:
        return None
    return (f"The GPU ({gpu.name}) has {gpu.free_bytes / GIB:.1f} GB free of {gpu.total_bytes / GIB:.1f} GB; "
            f"MoME needs about {NEEDED_BYTES / GIB:.1f} GB (in Fast mode too). Choose the CPU, or close programs "
            "that use the GPU.")
