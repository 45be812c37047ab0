"""Multi-scale decoder-layer experts: one per decoder stage, projected to a common width."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .layers import norm_act_conv


class ScaleExpert(nn.Module):
    """Project one decoder stage ``B×C_s×(X/s)³`` to ``B×D×X³`` (GN → ReLU → 1×1 conv → trilinear up)."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.project = norm_act_conv(in_channels, out_channels)

    def forward(self, feature: torch.Tensor, size: tuple[int, int, int]) -> torch.Tensor:
        x = self.project(feature)
        if tuple(x.shape[2:]) != tuple(size):
            x = F.interpolate(x, size=size, mode="trilinear", align_corners=False)
        return x


class ExpertBank(nn.Module):
    """All scale experts; returns the stacked expert features ``B×N_E×D×X³``."""

    def __init__(self, stage_channels: dict[str, int], out_channels: int):
        super().__init__()
        self.stages = list(stage_channels)
        self.experts = nn.ModuleDict(
            {stage: ScaleExpert(ch, out_channels) for stage, ch in stage_channels.items()}
        )

    def forward(self, features: dict[str, torch.Tensor], size: tuple[int, int, int]) -> torch.Tensor:
        return torch.stack([self.experts[s](features[s], size) for s in self.stages], dim=1)
