"""Partial-label loss: BCE + Dice over the labelled (sample, class) pairs only.

A dataset that does not annotate a class says nothing about it: treating it as background would
teach the model to erase that structure. So unlabelled pairs are dropped before the loss, and get
exactly zero gradient ("masked back-propagation", as in the Universal Model).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from monai.losses import DiceLoss
from torch import nn


class MaskedBCEDiceLoss(nn.Module):
    """``forward(logits B×K×X³, target B×K×X³ in {0,1}, labelled B×K bool) → scalar``.

    Each term is averaged over the labelled pairs in the batch; with none labelled the loss is a
    graph-connected zero (so DDP and gradient accumulation still see every parameter).
    """

    def __init__(self, bce_weight: float = 1.0, dice_weight: float = 1.0):
        super().__init__()
        self.bce_weight = bce_weight
        self.dice_weight = dice_weight
        # Smoothing in numerator and denominator keeps empty targets meaningful (pushes p → 0).
        self.dice = DiceLoss(sigmoid=True, reduction="none", smooth_nr=1.0, smooth_dr=1.0)

    def forward(self, logits: torch.Tensor, target: torch.Tensor, labelled: torch.Tensor) -> torch.Tensor:
        if logits.shape != target.shape:
            raise ValueError(f"logits {tuple(logits.shape)} and target {tuple(target.shape)} differ")
        if labelled.shape != logits.shape[:2]:
            raise ValueError(f"labelled must be B×K = {tuple(logits.shape[:2])}, got {tuple(labelled.shape)}")
        labelled = labelled.bool()
        if not labelled.any():
            return logits.sum() * 0.0
        x = logits[labelled]  # P×X³: one row per labelled (sample, class) pair
        y = target[labelled].to(x.dtype)
        bce = F.binary_cross_entropy_with_logits(x, y, reduction="none").flatten(1).mean(1)
        dice = self.dice(x[:, None], y[:, None]).flatten()
        return (self.bce_weight * bce + self.dice_weight * dice).mean()
