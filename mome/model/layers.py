"""Small building blocks shared by the experts and the heads."""

from __future__ import annotations

from torch import nn


def group_norm(channels: int, max_groups: int = 16) -> nn.GroupNorm:
    """GroupNorm with the largest group count ≤ ``max_groups`` that divides ``channels``.

    The Universal Model uses GN(16, C); small feature sizes (12, 24) are not all divisible by 16.
    """
    groups = max(g for g in range(1, max_groups + 1) if channels % g == 0)
    return nn.GroupNorm(groups, channels)


def norm_act_conv(in_channels: int, out_channels: int) -> nn.Sequential:
    """GN → ReLU → 1×1×1 conv: the Universal Model's projection idiom."""
    return nn.Sequential(
        group_norm(in_channels), nn.ReLU(inplace=True), nn.Conv3d(in_channels, out_channels, 1)
    )
