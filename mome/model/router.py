"""Text-guided, pixel-wise router: per class and voxel, a softmax over the scale experts."""

from __future__ import annotations

import math

import torch
from torch import nn


class TextGuidedRouter(nn.Module):
    """Gate ``g_{k,s}(x) = softmax_s((⟨q_{k,s}, v(x)⟩/√d_r + b_s) / τ)``.

    * query ``q_k = W_q ω_k ∈ R^{N_E×d_r}`` from the class's projected text feature ``ω_k``;
    * key ``v(x) ∈ R^{d_r}``: a 1×1 conv over the concatenated expert features at voxel ``x``.

    MoME's router (arXiv 2510.26996). The key is computed once per image; each class then costs only
    an ``N_E×d_r`` product per voxel, so the router's cost grows with the number of prompts K, not the
    backbone's. The bias starts at zero, so the gates start close to uniform.

    Args:
        num_experts: ``N_E``.
        expert_dim: ``D``, the width of each expert's features.
        text_dim: width of the class text feature ``ω_k``.
        router_dim: ``d_r``.
        top_k: keep the k best experts per voxel and renormalise; None = dense.
        temperature: ``τ``.

    Shapes: :meth:`keys` ``B×N_E×D×X×Y×Z`` → ``B×d_r×X×Y×Z``; :meth:`gates` with ``B×K×T'`` class
    features → ``B×K×N_E×X×Y×Z``; :meth:`fuse` → ``B×K×D×X×Y×Z``.
    """

    def __init__(
        self,
        num_experts: int,
        expert_dim: int,
        text_dim: int,
        router_dim: int = 16,
        top_k: int | None = None,
        temperature: float = 1.0,
    ):
        super().__init__()
        self.num_experts = num_experts
        self.router_dim = router_dim
        self.top_k = top_k
        self.temperature = temperature
        self.query = nn.Linear(text_dim, num_experts * router_dim)
        self.key = nn.Conv3d(num_experts * expert_dim, router_dim, 1)
        self.bias = nn.Parameter(torch.zeros(num_experts))

    def keys(self, experts: torch.Tensor) -> torch.Tensor:
        """``B×N_E×D×X³`` expert features → ``B×d_r×X³`` voxel keys."""
        b, n, d = experts.shape[:3]
        return self.key(experts.reshape(b, n * d, *experts.shape[3:]))

    def gates(self, keys: torch.Tensor, text: torch.Tensor) -> torch.Tensor:
        """Voxel keys ``B×d_r×X³`` and class features ``B×K×T`` → gates ``B×K×N_E×X³`` (sum 1 over N_E)."""
        b, k = text.shape[:2]
        n = self.num_experts
        q = self.query(text).view(b, k * n, self.router_dim) / (math.sqrt(self.router_dim) * self.temperature)
        # One batched matmul over flattened voxels is several times faster on CPU than an einsum.
        logits = torch.bmm(q, keys.flatten(2)).view(b, k, n, *keys.shape[2:])
        logits = logits + (self.bias / self.temperature).view(1, 1, n, *([1] * (keys.dim() - 2)))
        if self.top_k is not None and self.top_k < self.num_experts:
            # Keep the k best experts per voxel and renormalise among them.
            kth = logits.topk(self.top_k, dim=2).values[:, :, -1:]
            logits = logits.masked_fill(logits < kth, float("-inf"))
        return logits.softmax(dim=2)

    @staticmethod
    def fuse(experts: torch.Tensor, gates: torch.Tensor) -> torch.Tensor:
        """``F_k(x) = Σ_s g_{k,s}(x) e_s(x)``: ``B×N_E×D×X³``, ``B×K×N_E×X³`` → ``B×K×D×X³``."""
        # A loop over the few experts (N_E = 5) avoids materialising a B×K×N_E×D×X³ product.
        fused = gates[:, :, 0, None] * experts[:, None, 0]
        for s in range(1, experts.shape[1]):
            fused = fused + gates[:, :, s, None] * experts[:, None, s]
        return fused
