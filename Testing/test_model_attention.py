"""The chunked training attention (mome/model/attention.py) against MONAI's own window attention:
the same values and gradients (the relative position table included), every chunk boundary and
shifted-window mask index exercised, and far fewer bytes kept for the backward pass."""

from __future__ import annotations

import copy

import pytest
import torch
from monai.networks.nets.swin_unetr import WindowAttention

from mome.model import attention
from mome.model.attention import ChunkedWindowAttention, TrainingLeanWindowAttention, use_chunked_window_attention
from mome.model.backbone import MoMESwinUNETR


def _reference(q, k, v, position_bias, mask, scale):
    """Softmax attention written out, as MONAI computes it."""
    scores = (q * scale) @ k.transpose(-2, -1) + position_bias
    if mask is not None:
        windows = mask.shape[0]
        scores = (scores.view(-1, windows, *scores.shape[1:]) + mask[None, :, None]).flatten(0, 1)
    return scores.softmax(-1) @ v


@pytest.mark.parametrize("shifted", [False, True])
@pytest.mark.parametrize("chunk", [1, 2, 5, 6])
def test_gradients_match_autograd_of_the_written_out_attention(shifted, chunk):
    """Two images × 3 windows: chunks of 2 and 5 cross from one image's windows into the next."""
    gen = torch.Generator().manual_seed(chunk)
    windows, heads, tokens, dim = 3, 2, 5, 4
    q, k, v = (torch.randn(2 * windows, heads, tokens, dim, generator=gen, dtype=torch.float64, requires_grad=True)
               for _ in range(3))
    position_bias = torch.randn(heads, tokens, tokens, generator=gen, dtype=torch.float64, requires_grad=True)
    mask = torch.where(torch.rand(windows, tokens, tokens, generator=gen) < 0.3, -100.0, 0.0).double() if shifted else None

    def chunked(*args):
        return ChunkedWindowAttention.apply(*args, mask, 0.5, chunk)

    torch.testing.assert_close(chunked(q, k, v, position_bias), _reference(q, k, v, position_bias, mask, 0.5))
    assert torch.autograd.gradcheck(chunked, (q, k, v, position_bias))


def _pair(dim=12, heads=3):
    torch.manual_seed(0)
    monai = WindowAttention(dim, heads, (7, 7, 7))
    lean = copy.deepcopy(monai)
    assert use_chunked_window_attention(lean) == 1 and type(lean) is TrainingLeanWindowAttention
    return monai, lean


def _saved_bytes(fn) -> int:
    """Bytes of the tensors autograd keeps for the backward pass while ``fn`` runs (each counted once)."""
    seen: dict[tuple[int, int], int] = {}

    def pack(t):
        seen[(t.data_ptr(), t.numel())] = t.numel() * t.element_size()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = fn()
    return out, sum(seen.values())


def test_training_on_cpu_gives_monais_values_and_gradients_and_keeps_far_less():
    monai, lean = _pair()
    windows = 27  # one image of 21³ tokens in 7³ windows; the chunk budget holds 8 windows
    x = torch.randn(windows, 343, 12, requires_grad=True)
    mask = torch.where(torch.rand(windows, 343, 343) < 0.2, -100.0, 0.0)
    grads = []
    for module in (monai, lean):
        x.grad = None
        out, saved = _saved_bytes(lambda m=module: m(x, mask))
        out.square().sum().backward()
        grads.append((out.detach(), saved, x.grad.clone(), [p.grad.clone() for p in module.parameters()]))
    (out_m, saved_m, gx_m, gp_m), (out_l, saved_l, gx_l, gp_l) = grads
    torch.testing.assert_close(out_l, out_m, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(gx_l, gx_m, atol=1e-5, rtol=1e-4)
    for a, b in zip(gp_l, gp_m):  # qkv, proj and the relative position table
        torch.testing.assert_close(a, b, atol=1e-4, rtol=1e-4)
    score_bytes = windows * 3 * 343 * 343 * 4
    assert saved_m > score_bytes  # MONAI keeps the softmax of every window
    # q, k, v, the linear layers' inputs and the mask as booleans (a quarter of one score tensor)
    assert saved_l < score_bytes / 3 and saved_l < saved_m / 4


def test_inference_and_frozen_layers_take_monais_path(monkeypatch):
    _, lean = _pair()
    calls = []
    monkeypatch.setattr(ChunkedWindowAttention, "apply", lambda *a: calls.append(a) or pytest.fail("chunked"))
    with torch.no_grad():
        lean(torch.randn(2, 343, 12), None)
    assert calls == []


def test_chunks_fit_the_budget():
    assert attention.windows_per_chunk(3, 343) == attention.CHUNK_BYTES // (3 * 343 * 343 * 4) >= 8
    assert attention.windows_per_chunk(24, 343, budget=1) == 1


def test_backbone_switches_every_window_attention_and_keeps_monais_state_dict_keys():
    from monai.networks.nets import SwinUNETR

    ours = MoMESwinUNETR(1, 12)
    layers = [m for m in ours.modules() if isinstance(m, WindowAttention)]
    assert layers and all(type(m) is TrainingLeanWindowAttention for m in layers)
    theirs = SwinUNETR(in_channels=1, out_channels=1, feature_size=12, use_v2=False)
    assert {k for k in theirs.state_dict() if not k.startswith("out.")} == set(ours.state_dict())
