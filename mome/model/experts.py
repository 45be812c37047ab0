"""Multi-scale decoder-layer experts: one per decoder stage, projected to a common width."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .layers import norm_act_conv


class ScaleExpert(nn.Module):
    """One decoder-scale expert of MoME (arXiv 2510.26996): GN → ReLU → 1×1×1 conv → trilinear
    upsampling to the input size.

    Args:
        in_channels: ``C_s``, channels of the decoder stage.
        out_channels: ``D``, the common expert width.

    Shapes: ``feature B×C_s×(X/s)×(Y/s)×(Z/s)`` and the target ``size`` (X, Y, Z) → ``B×D×X×Y×Z``.
    """

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.project = norm_act_conv(in_channels, out_channels)

    def forward(self, feature: torch.Tensor, size: tuple[int, int, int]) -> torch.Tensor:
        x = self.project(feature)
        if tuple(x.shape[2:]) != tuple(size):
            x = F.interpolate(x, size=size, mode="trilinear", align_corners=False)
        return x


class ExpertBank(nn.Module):
    """All scale experts of MoME (arXiv 2510.26996), one per decoder stage.

    Args:
        stage_channels: decoder stage name → its channels ``C_s``, in expert order.
        out_channels: ``D``, the common expert width.

    Shapes: ``features`` (stage name → ``B×C_s×…``) and ``size`` (X, Y, Z) → ``B×N_E×D×X×Y×Z``.
    """

    def __init__(self, stage_channels: dict[str, int], out_channels: int):
        super().__init__()
        self.stages = list(stage_channels)
        self.experts = nn.ModuleDict(
            {stage: ScaleExpert(ch, out_channels) for stage, ch in stage_channels.items()}
        )

    def forward(self, features: dict[str, torch.Tensor], size: tuple[int, int, int]) -> torch.Tensor:
        return torch.stack([self.experts[s](features[s], size) for s in self.stages], dim=1)
