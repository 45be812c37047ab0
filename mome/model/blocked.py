"""Inference-time class computation of MoME (router gates → fusion → dynamic heads), block by block
over voxels, for all prompted classes at once.

The per-class work is tiny in arithmetic (a few hundred multiply-adds per class and voxel, next to
hundreds of thousands in the backbone) but large in memory traffic: on whole windows every step
writes and re-reads a ``K×(N_E or D)×X³`` tensor. Cutting the voxels into blocks whose
intermediates fit in the CPU's cache (or, on a GPU, a bounded slice of memory) and running every
step on one block before the next keeps that traffic in cache and bounds memory independently of K.
On a GPU the intermediates also stay in the experts' dtype (bf16 under autocast) instead of being
promoted to float32 by the softmax.

The same mathematics as the whole-tensor path in ``network.py`` (``TextGuidedRouter.gates`` /
``fuse`` and ``apply_dynamic_head``), which training keeps because its autograd graph is simpler;
``Testing/test_model_blocked.py`` checks that both agree.
"""

from __future__ import annotations

import math

import torch

from .router import TextGuidedRouter

#: Working-set budget of one block: the L2/L3-sized sweet spot on CPUs (measured on 2 EPYC cores,
#: benchmarks/README.md), and on a GPU a bound on the memory the class computation may take.
CPU_BLOCK_BYTES = 12 * 2**20
CUDA_BLOCK_BYTES = 1 * 2**30
MIN_BLOCK_VOXELS = 1024


def block_voxels(device: torch.device, classes: int, values_per_class: int, element_bytes: int) -> int:
    """Voxels per block (of each window in the batch) so that ``classes × values_per_class``
    intermediates per voxel fit the device's budget; ``classes`` counts every (window, class) pair."""
    budget = CUDA_BLOCK_BYTES if device.type == "cuda" else CPU_BLOCK_BYTES
    per_voxel = max(1, classes * values_per_class * element_bytes)
    return max(MIN_BLOCK_VOXELS, budget // per_voxel)


def _flat_heads(heads: list[tuple[torch.Tensor, torch.Tensor]]) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Per layer ``(weight B×K×out×in, bias B×K×out)`` → ``(B·K×out×in, B·K×out×1)`` for ``baddbmm``."""
    return [(w.reshape(-1, *w.shape[2:]), bias.reshape(-1, bias.shape[-1], 1)) for w, bias in heads]


def _run_head_tail(x: torch.Tensor, layers: list[tuple[torch.Tensor, torch.Tensor]]) -> torch.Tensor:
    """The dynamic head from its second layer on; ``x`` is the first layer's ReLU output ``B·K×h×n``."""
    for i, (w, bias) in enumerate(layers):
        x = torch.baddbmm(bias.to(x.dtype), w.to(x.dtype), x)
        if i < len(layers) - 1:
            x = x.relu_()
    return x


def mome_class_logits(
    experts: torch.Tensor,
    keys: torch.Tensor,
    omega: torch.Tensor,
    heads: list[tuple[torch.Tensor, torch.Tensor]],
    router: TextGuidedRouter,
    gates_out: torch.Tensor | None = None,
) -> torch.Tensor:
    """MoME's class logits ``B×K×X³`` from experts ``B×N_E×D×X³``, voxel keys ``B×d_r×X³``, class text
    features ``omega`` ``B×K×T'`` and the controller's head parameters; ``gates_out`` (``B×K×N_E×X³``),
    when given, receives the gates."""
    b, n_e, d = experts.shape[:3]
    k = omega.shape[1]
    spatial = experts.shape[3:]
    dtype = experts.dtype
    q = router.query(omega).view(b, k * n_e, router.router_dim)
    q = (q / (math.sqrt(router.router_dim) * router.temperature)).to(dtype)
    bias = (router.bias / router.temperature).to(dtype).repeat(k).view(1, k * n_e, 1)
    key_flat = keys.flatten(2).to(dtype)
    expert_flat = experts.flatten(3)
    layers = _flat_heads(heads)
    out = torch.empty(b, k, key_flat.shape[-1], dtype=dtype, device=experts.device)
    # gate logits + gates (N_E each), fused features (D), two hidden layers (h each), the logit
    values = 2 * n_e + d + 2 * layers[0][0].shape[1] + 1
    step = block_voxels(experts.device, b * k, values, dtype.itemsize)
    for start in range(0, key_flat.shape[-1], step):
        block = slice(start, start + step)
        logits = torch.baddbmm(bias, q, key_flat[:, :, block]).view(b, k, n_e, -1)
        if router.top_k is not None and router.top_k < n_e:
            kth = logits.topk(router.top_k, dim=2).values[:, :, -1:]
            logits = logits.masked_fill(logits < kth, float("-inf"))
        # Softmax in at least float32 (as autocast would), stored back in the experts' dtype.
        gates = logits.softmax(dim=2, dtype=torch.promote_types(dtype, torch.float32)).to(dtype)
        if gates_out is not None:
            gates_out.flatten(3)[..., block] = gates
        e = expert_flat[..., block]
        fused = gates[:, :, 0, None] * e[:, None, 0]
        for s in range(1, n_e):
            fused.addcmul_(gates[:, :, s, None], e[:, None, s])
        w1, b1 = layers[0]
        hidden = torch.baddbmm(b1.to(dtype), w1.to(dtype), fused.view(b * k, d, -1)).relu_()
        out[:, :, block] = _run_head_tail(hidden, layers[1:]).view(b, k, -1)
    return out.view(b, k, *spatial)


def universal_class_logits(shared: torch.Tensor, heads: list[tuple[torch.Tensor, torch.Tensor]]) -> torch.Tensor:
    """The Universal Model's class logits ``B×K×X³`` from the shared features ``B×D×X³``.

    Every class reads the same features, so the first head layer of all K classes is one matrix
    product ``(K·h × D) @ (D × voxels)`` instead of K products over K copies of the features.
    """
    b, d = shared.shape[:2]
    spatial = shared.shape[2:]
    dtype = shared.dtype
    w1, b1 = heads[0]
    k, h = w1.shape[1], w1.shape[2]
    w1 = w1.reshape(b, k * h, d).to(dtype)
    b1 = b1.reshape(b, k * h, 1).to(dtype)
    layers = _flat_heads(heads[1:])
    flat = shared.flatten(2)
    out = torch.empty(b, k, flat.shape[-1], dtype=dtype, device=shared.device)
    step = block_voxels(shared.device, b * k, 2 * h + 1, dtype.itemsize)
    for start in range(0, flat.shape[-1], step):
        block = slice(start, start + step)
        hidden = torch.baddbmm(b1, w1, flat[:, :, block]).relu_().view(b * k, h, -1)
        out[:, :, block] = _run_head_tail(hidden, layers).view(b, k, -1)
    return out.view(b, k, *spatial)
