"""The inference-time fast paths give the training path's values: the blocked class computation
(mome/model/blocked.py) against the whole-tensor one built from the router's and heads' own
functions, and the backbone's fused attention against MONAI's explicit attention. Random weights and
features; every comparison could fail on a wrong index, bias, dtype or block boundary."""

from __future__ import annotations

import pytest
import torch

from mome.model import MoME, MoMEConfig, blocked
from mome.model.backbone import MoMESwinUNETR
from mome.model.heads import apply_dynamic_head

TEXT_DIM = 32
SPATIAL = (20, 24, 28)  # 13 440 voxels, not a multiple of the block


def tiny(**kw) -> MoME:
    torch.manual_seed(0)
    return MoME(MoMEConfig.from_size("tiny", text_dim=TEXT_DIM, **kw)).eval()


@pytest.fixture
def odd_blocks(monkeypatch):
    """Blocks of 3001 voxels: several per image, and a last one that is only partly filled."""
    monkeypatch.setattr(blocked, "block_voxels", lambda *args: 3001)


def class_inputs(model: MoME, b: int, k: int, dtype=torch.float32, seed: int = 0):
    """Random decoder features through the model's own experts/pre-classifier, router keys, class
    text features and controller output: everything the class computation reads."""
    torch.manual_seed(seed)
    c = model.config
    with torch.no_grad():
        omega = model.text_projection(torch.randn(b, k, c.text_dim, dtype=dtype))
        heads = model.controller(torch.randn(b, c.global_dim, dtype=dtype), omega)
        if not model.is_mome:
            return torch.randn(b, c.expert_dim, *SPATIAL, dtype=dtype), None, omega, heads
        experts = torch.randn(b, c.num_experts, c.expert_dim, *SPATIAL, dtype=dtype)
        return experts, model.router.keys(experts), omega, heads


def reference(model: MoME, features, keys, omega, heads):
    """The whole-tensor path, written with the router's and heads' own functions."""
    if not model.is_mome:
        k = omega.shape[1]
        return apply_dynamic_head(features[:, None].expand(-1, k, *features.shape[1:]), heads), None
    gates = model.router.gates(keys, omega)
    return apply_dynamic_head(model.router.fuse(features, gates), heads), gates


@pytest.mark.parametrize("b, k", [(1, 1), (1, 5), (1, 20), (2, 3)])
def test_blocked_mome_equals_whole_tensor_path(odd_blocks, b, k):
    model = tiny()
    experts, keys, omega, heads = class_inputs(model, b, k, seed=k)
    gates = torch.empty(b, k, model.config.num_experts, *SPATIAL)
    with torch.no_grad():
        logits = blocked.mome_class_logits(experts, keys, omega, heads, model.router, gates)
        ref_logits, ref_gates = reference(model, experts, keys, omega, heads)
    torch.testing.assert_close(logits, ref_logits, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(gates, ref_gates, atol=1e-6, rtol=1e-5)
    assert logits.std() > 1e-3  # a real comparison, not of two constant outputs
    if b > 1:
        assert not torch.allclose(logits[0], logits[1])


def test_blocked_top_k_routing_equals_whole_tensor_path(odd_blocks):
    # float64: in float32 a near-tie between the k-th and (k+1)-th expert may round either way.
    model = tiny(router_top_k=2).double()
    experts, keys, omega, heads = class_inputs(model, 1, 4, torch.float64)
    gates = torch.empty(1, 4, model.config.num_experts, *SPATIAL, dtype=torch.float64)
    with torch.no_grad():
        logits = blocked.mome_class_logits(experts, keys, omega, heads, model.router, gates)
        ref_logits, ref_gates = reference(model, experts, keys, omega, heads)
    torch.testing.assert_close(logits, ref_logits, atol=1e-10, rtol=1e-10)
    torch.testing.assert_close(gates, ref_gates, atol=1e-10, rtol=1e-10)
    assert ((gates > 0).sum(dim=2) <= 2).all()


@pytest.mark.parametrize("b, k", [(1, 6), (2, 2)])
def test_blocked_universal_equals_whole_tensor_path(odd_blocks, b, k):
    model = tiny(variant="universal")
    shared, _, omega, heads = class_inputs(model, b, k)
    with torch.no_grad():
        logits = blocked.universal_class_logits(shared, heads)
        ref_logits, _ = reference(model, shared, None, omega, heads)
    torch.testing.assert_close(logits, ref_logits, atol=1e-5, rtol=1e-5)


def test_blocked_path_keeps_the_autocast_dtype():
    """Under bf16 autocast (as on a GPU) the blocked path computes in bf16 and agrees with the
    whole-tensor path to bf16 precision; CPU autocast stands in for CUDA's here."""
    model = tiny()
    experts, keys, omega, heads = class_inputs(model, 1, 3)
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        logits = blocked.mome_class_logits(experts.bfloat16(), keys.bfloat16(), omega, heads, model.router)
    ref_logits, _ = reference(model, experts, keys, omega, heads)
    assert logits.dtype == torch.bfloat16
    error = (logits.float() - ref_logits).abs().max()
    assert error < 0.03 * ref_logits.abs().max(), error


def test_network_uses_the_blocked_path_at_inference_only():
    """Same logits and gates from the network with the blocked path on and off (no autograd), and
    the training path under autograd."""
    model = tiny()
    image, text = torch.rand(1, 1, 64, 64, 64), torch.randn(3, TEXT_DIM)
    with torch.no_grad():
        fast = model.forward_with_gates(image, text)
        model.blocked_inference = False
        whole = model.forward_with_gates(image, text)
    for a, b in zip(fast, whole):
        torch.testing.assert_close(a, b, atol=2e-5, rtol=1e-5)
    model.blocked_inference = True
    with torch.enable_grad():
        trained = model(image, text)
    assert trained.requires_grad
    torch.testing.assert_close(trained.detach(), fast[0], atol=2e-5, rtol=1e-5)


def test_inference_block_size_follows_the_device_budget():
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    assert blocked.block_voxels(cpu, 20, 35, 4) * 20 * 35 * 4 <= blocked.CPU_BLOCK_BYTES
    assert blocked.block_voxels(cuda, 20, 35, 2) > blocked.block_voxels(cpu, 20, 35, 2)
    assert blocked.block_voxels(cpu, 10**6, 35, 4) == blocked.MIN_BLOCK_VOXELS
    # fewer classes → larger blocks: memory, not K, sets the block
    assert blocked.block_voxels(cpu, 1, 35, 4) >= 19 * blocked.block_voxels(cpu, 20, 35, 4)


def test_block_budget_counts_every_window_of_the_batch(monkeypatch):
    """Memory per block stays within the budget however many windows a batch holds."""
    seen = []
    real = blocked.block_voxels
    monkeypatch.setattr(blocked, "block_voxels", lambda *args: seen.append(args) or real(*args))
    model = tiny()
    for b in (1, 4):
        experts, keys, omega, heads = class_inputs(model, b, 5)
        with torch.no_grad():
            blocked.mome_class_logits(experts, keys, omega, heads, model.router)
    assert [args[1] for args in seen] == [5, 20]  # (window, class) pairs


def test_fused_window_attention_equals_monai_explicit_attention():
    torch.manual_seed(0)
    fused = MoMESwinUNETR(1, 12).eval()
    flags = [m for m in fused.modules() if hasattr(m, "use_flash_attention")]
    if not flags:
        pytest.skip("this MONAI has no fused-attention option (MONAI < 1.6)")
    assert all(m.use_flash_attention for m in flags)
    explicit = MoMESwinUNETR(1, 12).eval()
    explicit.load_state_dict(fused.state_dict())
    for m in explicit.modules():
        if hasattr(m, "use_flash_attention"):
            m.use_flash_attention = False
    x = torch.rand(1, 1, 64, 64, 64)
    with torch.no_grad():
        for a, b in zip(fused(x), explicit(x)):
            torch.testing.assert_close(a, b, atol=1e-4, rtol=1e-4)
