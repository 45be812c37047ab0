"""torchrun / DDP: NCCL on GPUs, gloo on CPUs; rank 0 writes.

Works the same on one node and on several (``torchrun --nnodes N --rdzv_backend c10d``): ranks only
ever talk through ``torch.distributed``, and every rank reads the prepared data and the output
folder's checkpoint, so on several nodes those must be on a shared filesystem.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import torch
import torch.distributed as dist

# Rank 0 validates while the other ranks wait at a barrier: a full validation set at paper size takes
# minutes, more than NCCL's 10-minute default allows.
COLLECTIVE_TIMEOUT = timedelta(hours=2)


@dataclass
class DistInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def setup_distributed(device: torch.device) -> DistInfo:
    """Initialise the process group when launched by torchrun (WORLD_SIZE > 1).

    On GPUs the group has two backends: NCCL for CUDA tensors (the gradients) and gloo for CPU
    tensors (the loss, the stop flag, the weight digests), because NCCL refuses CPU tensors.
    """
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistInfo()
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if not dist.is_initialized():
        backend = "gloo"
        if device.type == "cuda":
            torch.cuda.set_device(device)  # NCCL's barrier and object collectives use the current device
            backend = "cpu:gloo,cuda:nccl"
        dist.init_process_group(backend=backend, timeout=COLLECTIVE_TIMEOUT)
    return DistInfo(dist.get_rank(), dist.get_world_size(), local_rank)


def barrier(info: DistInfo) -> None:
    if info.enabled:
        dist.barrier()


def all_reduce_mean(value: torch.Tensor, info: DistInfo) -> torch.Tensor:
    if info.enabled:
        value = value.clone()
        dist.all_reduce(value)
        value /= info.world_size
    return value


def any_rank(flag: bool, info: DistInfo) -> bool:
    """True on every rank when ``flag`` is true on at least one (a collective: every rank must call it)."""
    if not info.enabled:
        return flag
    value = torch.tensor([1.0 if flag else 0.0])
    dist.all_reduce(value, op=dist.ReduceOp.MAX)
    return bool(value.item() > 0)


def gather(value: Any, info: DistInfo) -> list[Any]:
    """Every rank's ``value`` (a picklable object), in rank order, on every rank (a collective)."""
    if not info.enabled:
        return [value]
    out: list[Any] = [None] * info.world_size
    dist.all_gather_object(out, value)
    return out
