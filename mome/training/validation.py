"""Validation Dice on held-out cases, on the model grid, with the inference sliding window."""

from __future__ import annotations

import numpy as np
import torch
from monai.inferers import sliding_window_inference

from .prepared import PreparedCase


@torch.no_grad()
def predict_case(model, case: PreparedCase, embeddings: torch.Tensor, patch_size, device,
                 overlap: float = 0.25) -> np.ndarray:
    """Binary predictions ``K×Z×Y×X`` for every class of the run."""
    image = torch.as_tensor(case.image[None], device=device)
    pad = [max(0, p - s) for p, s in zip(patch_size, image.shape[2:])]
    probs = sliding_window_inference(
        image, patch_size, 1, lambda x: model(x, embeddings.to(device)).sigmoid(), overlap=overlap,
        mode="gaussian",
    )
    del pad
    return (probs[0] > 0.5).cpu().numpy()


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
