"""The MoME network: Swin UNETR experts + text-guided pixel-wise router + class-specific heads."""

from __future__ import annotations

import torch
from torch import nn

from .backbone import MoMESwinUNETR
from .blocked import mome_class_logits, universal_class_logits
from .config import DECODER_STAGES, MoMEConfig
from .experts import ExpertBank
from .heads import DynamicHeadController, GlobalImageFeature, TextProjection, apply_dynamic_head
from .layers import norm_act_conv
from .router import TextGuidedRouter


class MoME(nn.Module):
    """MoME: a Swin UNETR whose decoder scales are mixed, per class and voxel, by a text-guided router
    and segmented by text-conditioned dynamic heads.

    Based on: A. Rezvani, X. Yan, A. T. Wu, K. Han, P. Khosravi, X. Xie, "MoME: Mixture of Visual Language
    Medical Experts for Medical Imaging Segmentation", arXiv 2510.26996, 2025.

    Only the requested K classes are computed: the backbone and the experts run once per image; the
    router, fusion and heads run per class. In training they run on whole tensors, in chunks of
    ``class_chunk`` classes; at inference (no autograd) on blocks of voxels for all classes at once
    (``blocked.py``: the same values, faster, benchmarks/optimisations.py), so that memory stays
    bounded however many structures are prompted. Each class gets its own sigmoid channel, so an organ and its
    tumour may overlap.

    Args:
        config: the architecture (:class:`MoMEConfig`); ``variant="universal"`` drops the experts and
            router and is the CLIP-Driven Universal Model baseline.
        class_chunk: classes run through router, fusion and heads at a time (memory, not results).

    Attributes:
        blocked_inference: at inference, run router, fusion and heads block by block over voxels
            (default True); False runs them on whole tensors as in training, for comparisons.

    Shapes (``forward``):
        image: ``B×C_in×X×Y×Z``, each spatial size a multiple of 32.
        text: ``K×T`` class text embeddings shared by the batch, or ``B×K×T``.
        returns: logits ``B×K×X×Y×Z``.

    Example::

        net = MoME(MoMEConfig.from_size("tiny", text_dim=384))
        logits = net(torch.zeros(1, 1, 64, 64, 64), torch.randn(3, 384))  # 1×3×64×64×64
    """

    def __init__(self, config: MoMEConfig, class_chunk: int = 8):
        super().__init__()
        self.config = config
        self.class_chunk = class_chunk
        self.blocked_inference = True
        c = config
        self.backbone = MoMESwinUNETR(c.in_channels, c.feature_size, c.use_checkpoint)
        self.global_feature = GlobalImageFeature(c.stage_channels("dec4"), c.global_dim)
        self.text_projection = TextProjection(c.text_dim, c.text_proj_dim)
        self.controller = DynamicHeadController(c.global_dim + c.text_proj_dim, c.expert_dim, c.head_hidden)
        if c.variant == "mome":
            self.experts = ExpertBank({s: c.stage_channels(s) for s in c.expert_stages}, c.expert_dim)
            self.router = TextGuidedRouter(
                c.num_experts, c.expert_dim, c.text_proj_dim, c.router_dim, c.router_top_k, c.router_temperature
            )
        else:  # universal: one shared pre-classifier on the last decoder output
            self.precls = norm_act_conv(c.stage_channels("out"), c.expert_dim)

    @property
    def is_mome(self) -> bool:
        return self.config.variant == "mome"

    def forward(self, image: torch.Tensor, text: torch.Tensor) -> torch.Tensor:
        return self.forward_with_gates(image, text, return_gates=False)[0]

    def forward_with_gates(
        self, image: torch.Tensor, text: torch.Tensor, return_gates: bool = True
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Logits ``B×K×X³`` and, for MoME with ``return_gates``, gates ``B×K×N_E×X³``.

        The gates show which decoder scales each structure relied on at every voxel (they sum to 1
        over the experts). The universal variant has no gates and returns ``None``.
        """
        b = image.shape[0]
        size = tuple(image.shape[2:])
        if text.dim() == 2:
            text = text[None].expand(b, -1, -1)
        stages = dict(zip(DECODER_STAGES, self.backbone(image)))
        omega = self.text_projection(text.to(image.dtype))  # B×K×256
        heads = self.controller(self.global_feature(stages["dec4"]), omega)

        keys = None
        if self.is_mome:
            experts_or_shared = self.experts(stages, size)  # B×N_E×D×X³
            keys = self.router.keys(experts_or_shared)
        else:
            experts_or_shared = self.precls(stages["out"])  # B×D×X³ shared by every class

        if torch.is_grad_enabled() or not self.blocked_inference:
            return self._class_logits_whole(omega, heads, experts_or_shared, keys, return_gates)
        if not self.is_mome:
            return universal_class_logits(experts_or_shared, heads), None
        gates = None
        if return_gates:
            gates = experts_or_shared.new_empty(b, omega.shape[1], self.config.num_experts, *size)
        return mome_class_logits(experts_or_shared, keys, omega, heads, self.router, gates), gates

    def _class_logits_whole(self, omega, heads, experts_or_shared, keys, return_gates):
        """Router, fusion and heads on whole tensors, ``class_chunk`` classes at a time (training)."""
        logits, gates = [], []
        for start in range(0, omega.shape[1], self.class_chunk):
            chunk = slice(start, start + self.class_chunk)
            chunk_heads = [(w[:, chunk], bias[:, chunk]) for w, bias in heads]
            if self.is_mome:
                g = self.router.gates(keys, omega[:, chunk])
                fused = self.router.fuse(experts_or_shared, g)
                if return_gates:
                    gates.append(g)
            else:
                k = omega[:, chunk].shape[1]
                fused = experts_or_shared[:, None].expand(-1, k, *experts_or_shared.shape[1:])
            logits.append(apply_dynamic_head(fused, chunk_heads))
        out = torch.cat(logits, dim=1)
        return out, (torch.cat(gates, dim=1) if gates else None)

    def parameter_groups(self) -> dict[str, list[nn.Parameter]]:
        """Named groups used by fine-tuning freeze presets and by the optimiser."""
        groups = {
            "backbone": list(self.backbone.parameters()),
            "experts": list(self.experts.parameters()) if self.is_mome else list(self.precls.parameters()),
            "router": list(self.router.parameters()) if self.is_mome else [],
            "heads": [
                *self.global_feature.parameters(),
                *self.text_projection.parameters(),
                *self.controller.parameters(),
            ],
        }
        return groups
