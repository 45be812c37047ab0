"""Training checkpoints: written atomically, read with ``weights_only=True`` (no code unpickled)."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import torch

CHECKPOINT = "checkpoint.pt"


def save_checkpoint(folder: Path, state: dict[str, Any]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / CHECKPOINT
    tmp = folder / f".{CHECKPOINT}.tmp"
    torch.save(state, tmp)
    os.replace(tmp, path)  # a crash mid-write leaves the previous checkpoint intact
    return path


def load_checkpoint(folder: Path) -> dict[str, Any]:
    path = folder / CHECKPOINT
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint to resume from in {folder}; start without --resume")
    return torch.load(path, map_location="cpu", weights_only=True)


def state_digest(state: dict[str, torch.Tensor]) -> str:
    """SHA-256 over a state dict's names, dtypes, shapes and bytes, in order: equal iff the weights are.

    Under DDP every rank computes it of its own weights at each checkpoint, and the checkpoint records
    them all (``rank_digests``), so "every rank holds the same model" is a checked fact, not a hope.
    """
    digest = hashlib.sha256()
    for name, tensor in state.items():
        t = tensor.detach().cpu().contiguous().reshape(-1)
        digest.update(f"{name}|{t.dtype}|{tuple(tensor.shape)}|".encode())
        digest.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return digest.hexdigest()
