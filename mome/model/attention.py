"""Swin window attention for training on the CPU: a few windows at a time, keeping only ``q``, ``k``
and ``v`` for the backward pass.

MONAI's ``WindowAttention`` (Liu et al., arXiv 2103.14030, as in Swin UNETR) materialises the scores
of every window at once: at the first Swin stage of a 64³ crop that is 125 windows × 3 heads ×
343² values, 176 MB per tensor. Training keeps the softmax for the backward pass, and the forward
and backward passes each make three or four such tensors on the way. On the tiny model (64³ crop,
4 classes) they were more than half of what a training step saved for its backward pass (1.09 GB
of tensors; 0.61 GB with this module), and with them a CPU training run's peak RSS was over the
2.5 GB that issue 11 allows (``benchmarks/training_data.py``).

Here the scores of a chunk of windows (about 12 MB) are computed, used and freed before the next
chunk, and the backward pass recomputes each chunk's softmax from the saved ``q``, ``k``, ``v``, as
FlashAttention does (Dao et al., arXiv 2205.14135). PyTorch's fused ``scaled_dot_product_attention``
cannot do this alone: with a bias that needs a gradient (the relative position table is trained)
it falls back to the explicit computation on the CPU. The price is the recomputation: about 0.1 s
per first-stage block and step on 2 CPU cores.

Only CPU training takes this path. At inference MONAI's fused path is faster on the CPU (its
memory is bounded by the window batch), and on a GPU MONAI's own path runs: GPU behaviour is
unchanged.
"""

from __future__ import annotations

import torch
from monai.networks.nets.swin_unetr import WindowAttention
from torch import nn

#: Scores of one chunk of windows (``windows × heads × N × N`` float32): cache-sized, as the class
#: path's blocks (``blocked.py``).
CHUNK_BYTES = 12 * 2**20


def windows_per_chunk(heads: int, tokens: int, element_bytes: int = 4, budget: int = CHUNK_BYTES) -> int:
    """How many windows' ``heads × tokens²`` scores fit in ``budget`` bytes (at least one)."""
    return max(1, budget // (heads * tokens * tokens * element_bytes))


def _chunk_mask(mask: torch.Tensor | None, start: int, stop: int) -> torch.Tensor | None:
    """The shifted-window mask ``C×1×N×N`` of windows ``start:stop`` (window ``i`` of the batch is
    window ``i mod nW`` of its image), or None for unshifted windows."""
    if mask is None:
        return None
    windows, first = mask.shape[0], start % mask.shape[0]
    if first + stop - start <= windows:  # one image's run of windows: a view, no gather
        return mask[first:first + stop - start].unsqueeze(1)
    return mask[torch.arange(start, stop, device=mask.device) % windows].unsqueeze(1)


def _compact_mask(mask: torch.Tensor | None) -> tuple[torch.Tensor | None, float]:
    """The mask as the backward pass keeps it, and its fill value. MONAI's shifted-window mask holds
    0 and one negative value (different regions): booleans and that value, a quarter of the bytes;
    any other mask is kept as it is."""
    if mask is None:
        return None, 0.0
    fill = mask.min()
    if bool(((mask == 0) | (mask == fill)).all()):
        return mask != 0, float(fill)
    return mask, 0.0


def _add_bias_(scores: torch.Tensor, position_bias: torch.Tensor, mask: torch.Tensor | None, fill: float):
    scores += position_bias
    if mask is None:
        return scores
    return scores.add_(mask.to(scores.dtype) * fill if mask.dtype == torch.bool else mask)


class ChunkedWindowAttention(torch.autograd.Function):
    """``softmax(scale · q kᵀ + bias) v`` over windows in chunks; saves ``q``, ``k``, ``v`` (and the
    bias inputs: the ``H×N×N`` position bias, the mask as booleans) for the backward pass.

    Shapes: ``q``, ``k``, ``v`` ``B·nW×H×N×D``; ``position_bias`` ``H×N×N`` (gets a gradient);
    ``mask`` ``nW×N×N`` or None (a constant); returns ``B·nW×H×N×D``.
    """

    @staticmethod
    def forward(ctx, q, k, v, position_bias, mask, scale: float, chunk: int):  # noqa: D102 - see the class
        out = torch.empty_like(q)
        for start in range(0, q.shape[0], chunk):
            stop = min(q.shape[0], start + chunk)
            chunk_mask = _chunk_mask(mask, start, stop)
            bias = position_bias.unsqueeze(0) if chunk_mask is None else position_bias + chunk_mask
            out[start:stop] = torch.nn.functional.scaled_dot_product_attention(
                q[start:stop], k[start:stop], v[start:stop], attn_mask=bias.to(q.dtype), scale=scale)
        kept_mask, ctx.fill = _compact_mask(mask)
        ctx.save_for_backward(q, k, v, position_bias, kept_mask)
        ctx.scale, ctx.chunk = scale, chunk
        return out

    @staticmethod
    def backward(ctx, grad_out):  # noqa: D102 - the gradients of softmax attention, chunk by chunk
        q, k, v, position_bias, mask = ctx.saved_tensors
        scale, chunk = ctx.scale, ctx.chunk
        grad_q, grad_k, grad_v = torch.empty_like(q), torch.empty_like(k), torch.empty_like(v)
        grad_bias = torch.zeros_like(position_bias)
        for start in range(0, q.shape[0], chunk):
            stop = min(q.shape[0], start + chunk)
            qc, kc, vc, go = q[start:stop], k[start:stop], v[start:stop], grad_out[start:stop]
            scores = torch.matmul(qc * scale, kc.transpose(-2, -1))
            attn = _add_bias_(scores, position_bias, _chunk_mask(mask, start, stop), ctx.fill).softmax(-1)
            grad_v[start:stop] = torch.matmul(attn.transpose(-2, -1), go)
            grad_attn = torch.matmul(go, vc.transpose(-2, -1))
            grad_scores = torch.ops.aten._softmax_backward_data(grad_attn, attn, -1, attn.dtype)
            grad_q[start:stop] = torch.matmul(grad_scores, kc) * scale
            grad_k[start:stop] = torch.matmul(grad_scores.transpose(-2, -1), qc) * scale
            grad_bias += grad_scores.sum(0)
        return grad_q, grad_k, grad_v, grad_bias, None, None, None


class TrainingLeanWindowAttention(WindowAttention):
    """MONAI's ``WindowAttention`` with the chunked attention when training on the CPU. Same
    parameters and state-dict keys; installed on a built network by :func:`use_chunked_window_attention`."""

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        if x.device.type != "cpu" or not torch.is_grad_enabled() or torch.jit.is_scripting():
            return super().forward(x, mask)
        b, n, c = x.shape
        qkv = self.qkv(x).reshape(b, n, 3, self.num_heads, c // self.num_heads).permute(2, 0, 3, 1, 4)
        position_bias = self.relative_position_bias_table[
            self.relative_position_index[:n, :n].reshape(-1)].reshape(n, n, -1).permute(2, 0, 1)
        chunk = windows_per_chunk(self.num_heads, n)
        x = ChunkedWindowAttention.apply(qkv[0], qkv[1], qkv[2], position_bias, mask, self.scale, chunk)
        return self.proj_drop(self.proj(x.transpose(1, 2).reshape(b, n, c)))


def use_chunked_window_attention(module: nn.Module) -> int:
    """Switch every MONAI ``WindowAttention`` inside ``module`` to the chunked CPU attention (in place;
    parameters untouched); returns how many were switched. Modules with attention dropout keep
    MONAI's path (the chunked one has none; MoME trains without it)."""
    switched = 0
    for sub in module.modules():
        if type(sub) is WindowAttention and sub.attn_drop.p == 0:
            sub.__class__ = TrainingLeanWindowAttention
            switched += 1
    return switched
