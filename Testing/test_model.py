"""The MoME network: shapes, gradients, gates, parameter counts, only-requested-classes cost."""

from __future__ import annotations

import pytest
import torch

from mome.model import MoME, MoMEConfig
from mome.model.config import SIZES

TEXT_DIM = 32


def tiny(**kw) -> MoME:
    torch.manual_seed(0)
    return MoME(MoMEConfig.from_size("tiny", text_dim=TEXT_DIM, **kw))


@pytest.mark.parametrize("size", [64, 96])
@pytest.mark.parametrize("k", [1, 5])
def test_output_and_gate_shapes(size, k):
    model = tiny().eval()
    x = torch.randn(1, 1, size, size, size)
    with torch.no_grad():
        logits, gates = model.forward_with_gates(x, torch.randn(k, TEXT_DIM))
    assert logits.shape == (1, k, size, size, size)
    assert gates.shape == (1, k, 5, size, size, size)
    assert torch.isfinite(logits).all()
    torch.testing.assert_close(gates.sum(dim=2), torch.ones_like(gates[:, :, 0]), atol=1e-5, rtol=0)
    assert (gates >= 0).all()


def test_gradients_reach_every_expert_router_controller_and_projection():
    model = tiny()
    x = torch.randn(2, 1, 64, 64, 64)  # instance norm needs a bottleneck larger than 1 voxel
    logits = model(x, torch.randn(3, TEXT_DIM))
    (logits.sigmoid() * torch.linspace(0, 1, logits.numel()).view_as(logits)).sum().backward()
    groups = {
        **{f"expert {s}": model.experts.experts[s] for s in model.config.expert_stages},
        "router": model.router,
        "controller": model.controller,
        "text projection": model.text_projection,
        "global feature": model.global_feature,
        "backbone": model.backbone,
    }
    for name, module in groups.items():
        grads = [p.grad for p in module.parameters()]
        assert all(g is not None for g in grads), f"{name} got no gradient"
        assert sum(g.abs().sum() for g in grads) > 0, f"{name} has an all-zero gradient"


def test_top_k_routing_uses_at_most_k_experts_per_voxel():
    model = tiny(router_top_k=2).eval()
    with torch.no_grad():
        _, gates = model.forward_with_gates(torch.randn(1, 1, 64, 64, 64), torch.randn(2, TEXT_DIM))
    assert ((gates > 0).sum(dim=2) <= 2).all()
    torch.testing.assert_close(gates.sum(dim=2), torch.ones_like(gates[:, :, 0]), atol=1e-5, rtol=0)


def test_classes_are_independent_of_each_other_and_of_chunking():
    """Only requested classes are computed, and a class's output does not depend on its neighbours."""
    model = tiny().eval()
    x, text = torch.randn(1, 1, 64, 64, 64), torch.randn(5, TEXT_DIM)
    with torch.no_grad():
        together = model(x, text)
        model.class_chunk = 2
        chunked = model(x, text)
        alone = model(x, text[3:4])
    torch.testing.assert_close(chunked, together, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(alone[:, 0], together[:, 3], atol=1e-5, rtol=1e-5)


def test_universal_variant_has_no_experts_and_returns_no_gates():
    model = tiny(variant="universal").eval()
    assert not hasattr(model, "router")
    with torch.no_grad():
        logits, gates = model.forward_with_gates(torch.randn(1, 1, 64, 64, 64), torch.randn(2, TEXT_DIM))
    assert logits.shape == (1, 2, 64, 64, 64) and gates is None


def test_paper_size_parameter_count_matches_universal_model_plus_moe():
    """Universal Model (Swin UNETR) has 62.19 M parameters; MoME adds the experts and router."""
    mome = MoME(MoMEConfig.from_size("paper"))
    universal = MoME(MoMEConfig.from_size("paper", variant="universal"))
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    moe = count(mome.experts) + count(mome.router)
    total = count(mome)
    print(f"\nMoME paper: {total / 1e6:.3f} M parameters (MoE part {moe / 1e6:.4f} M); "
          f"universal baseline {count(universal) / 1e6:.3f} M")
    assert abs(total - (62.2e6 + moe)) / (62.2e6 + moe) < 0.02
    assert SIZES["paper"] == 48 and mome.config.feature_size == 48


def test_config_rejects_bad_values():
    with pytest.raises(ValueError, match="feature_size"):
        MoMEConfig(feature_size=20)
    with pytest.raises(ValueError, match="router_top_k"):
        MoMEConfig(router_top_k=9)
    with pytest.raises(ValueError, match="unknown size"):
        MoMEConfig.from_size("huge")
    cfg = MoMEConfig.from_size("small", router_top_k=2)
    assert MoMEConfig.from_dict(cfg.to_dict()) == cfg
