"""Class-specific heads: a controller turns [image feature, class text] into a tiny dynamic head."""

from __future__ import annotations

import torch
from torch import nn

from .layers import group_norm


class GlobalImageFeature(nn.Module):
    """The image's global feature that conditions the class heads (Universal Model, arXiv 2301.00785,
    as used by MoME, arXiv 2510.26996): GN → ReLU → global average pool → 1×1×1 conv.

    Args:
        in_channels: ``C``, channels of the bottleneck (``dec4``).
        out_dim: ``G``.

    Shapes: ``B×C×(X/32)×(Y/32)×(Z/32)`` → ``B×G``.
    """

    def __init__(self, in_channels: int, out_dim: int = 256):
        super().__init__()
        self.norm = nn.Sequential(group_norm(in_channels), nn.ReLU(inplace=True))
        self.project = nn.Conv3d(in_channels, out_dim, 1)

    def forward(self, bottleneck: torch.Tensor) -> torch.Tensor:
        pooled = self.norm(bottleneck).mean(dim=tuple(range(2, bottleneck.dim())), keepdim=True)
        return self.project(pooled).flatten(1)


class TextProjection(nn.Module):
    """Trainable projection of the frozen class text embedding (Linear + ReLU): ``ω_k``.

    Args:
        text_dim: ``T``, the text encoder's width.
        out_dim: width of ``ω_k``.

    Shapes: ``…×T`` (``K×T`` or ``B×K×T``) → ``…×out_dim``.
    """

    def __init__(self, text_dim: int, out_dim: int = 256):
        super().__init__()
        self.linear = nn.Linear(text_dim, out_dim)

    def forward(self, text: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.linear(text))


class DynamicHeadController(nn.Module):
    """Predicts the parameters θ_k of a D→h→h→1 head of 1×1×1 convs for each (sample, class), from
    [image feature, class text feature] (Universal Model, arXiv 2301.00785; MoME, arXiv 2510.26996).

    With D = h = 8 that is 153 numbers, as in the Universal Model's ``Conv3d(512→153)`` controller.

    Args:
        in_dim: ``G`` + the text feature width.
        feature_dim: ``D``, the heads' input width.
        hidden: ``h``, the heads' hidden width.

    Shapes: ``B×G`` and ``B×K×T'`` → per layer ``(weight B×K×out×in, bias B×K×out)``; run them
    with :func:`apply_dynamic_head`.
    """

    def __init__(self, in_dim: int, feature_dim: int = 8, hidden: int = 8):
        super().__init__()
        self.shapes = [(hidden, feature_dim), (hidden, hidden), (1, hidden)]
        n_params = sum(o * i + o for o, i in self.shapes)
        self.linear = nn.Linear(in_dim, n_params)

    def forward(self, image_feature: torch.Tensor, text_feature: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """``B×G`` and ``B×K×T`` → per layer ``(weight B×K×out×in, bias B×K×out)``."""
        b, k = text_feature.shape[:2]
        joint = torch.cat([image_feature[:, None].expand(b, k, -1), text_feature], dim=-1)
        theta = self.linear(joint)
        layers, start = [], 0
        for out_ch, in_ch in self.shapes:
            w = theta[..., start : start + out_ch * in_ch].reshape(b, k, out_ch, in_ch)
            start += out_ch * in_ch
            bias = theta[..., start : start + out_ch]
            start += out_ch
            layers.append((w, bias))
        return layers


def apply_dynamic_head(features: torch.Tensor, layers: list[tuple[torch.Tensor, torch.Tensor]]) -> torch.Tensor:
    """Run each class's own head on its own features: ``B×K×D×X³`` → logits ``B×K×X³``.

    1×1×1 convs are per-voxel matrix products, so an einsum over (sample, class) replaces the
    Universal Model's grouped convolution and per-sample loop: one ``baddbmm`` per layer over the
    flattened (sample, class) pairs.
    """
    b, k, d = features.shape[:3]
    x = features.reshape(b * k, d, -1)
    for i, (w, bias) in enumerate(layers):
        x = torch.baddbmm(bias.reshape(b * k, -1, 1), w.reshape(b * k, *w.shape[2:]), x)
        if i < len(layers) - 1:
            x = torch.relu(x)
    return x.view(b, k, *features.shape[3:])
