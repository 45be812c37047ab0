"""Validation Dice on held-out cases, on the model grid, with the inference sliding window."""

from __future__ import annotations

import numpy as np
import torch

from ..inference.sliding import FAST_OVERLAP, sliding_window_probabilities
from .prepared import PreparedCase


def predict_case(model, case: PreparedCase, embeddings: torch.Tensor, patch_size, device,
                 overlap: float = FAST_OVERLAP) -> np.ndarray:
    """Binary predictions ``K×X×Y×Z`` (the prepared arrays' layout) for every class of the run,
    from the sliding window inference uses; ``model`` must be on ``device``."""
    image = torch.as_tensor(case.image[None])
    probabilities = sliding_window_probabilities(model, image, embeddings, patch_size, overlap, device)
    return (probabilities > 0.5).numpy()


def dice(pred: np.ndarray, truth: np.ndarray) -> float:
    denom = pred.sum() + truth.sum()
    return float(2.0 * np.logical_and(pred, truth).sum() / denom) if denom else 1.0


def validate(model, cases: list[PreparedCase], classes: list[str], embeddings: torch.Tensor,
             patch_size, device) -> dict[str, float]:
    """Mean Dice per class over the cases that annotate it *and* contain it (the UM protocol)."""
    scores: dict[str, list[float]] = {}
    was_training = model.training
    model.eval()
    for case in cases:
        pred = predict_case(model, case, embeddings, patch_size, device)
        for i, key in enumerate(classes):
            if case.labelled[i] and case.target[i].any():
                scores.setdefault(key, []).append(dice(pred[i], case.target[i].astype(bool)))
    model.train(was_training)
    return {k: float(np.mean(v)) for k, v in scores.items()}
