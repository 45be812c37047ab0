"""Architecture configuration: one dataclass, serialised verbatim into a model package's model.json."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any

#: Decoder stages the backbone returns, coarse to fine (see ``backbone.MoMESwinUNETR``).
DECODER_STAGES = ("dec4", "dec3", "dec2", "dec1", "dec0", "out")

#: Channel multiplier of each decoder stage relative to ``feature_size`` (MONAI Swin UNETR).
STAGE_CHANNEL_FACTOR = {"dec4": 16, "dec3": 8, "dec2": 4, "dec1": 2, "dec0": 1, "out": 1}

#: Named sizes. ``paper`` is the Universal Model / MoME setting; the others are CPU-friendly.
SIZES = {"paper": 48, "small": 24, "tiny": 12}

VARIANTS = ("mome", "universal")


@dataclass(frozen=True)
class MoMEConfig:
    """Everything needed to rebuild the network (arXiv 2510.26996; settings not given in the paper
    follow the CLIP-Driven Universal Model, arXiv 2301.00785).

    Args:
        variant: ``"mome"`` fuses the decoder scales with the text-guided router (the paper);
            ``"universal"`` applies the same class heads to the last decoder output only (the
            Universal Model baseline).
        feature_size: Swin UNETR feature size ``f`` (a multiple of 12); see :data:`SIZES`.
        in_channels: image channels (1 for CT).
        text_dim: ``T``, the width of the frozen text-encoder embedding.
        text_proj_dim: width of the projected class text feature ``ω_k``.
        global_dim: width ``G`` of the pooled bottleneck image feature.
        expert_stages: decoder stages used as experts (``N_E`` of :data:`DECODER_STAGES`).
        expert_dim: common expert width ``D``, also the dynamic heads' input width.
        router_dim: ``d_r``, the width of the router's query/key space.
        router_top_k: keep the k best experts per voxel; None = dense softmax.
        router_temperature: ``τ`` of the router softmax.
        head_hidden: hidden width ``h`` of the dynamic heads (D→h→h→1).
        use_checkpoint: gradient checkpointing in the Swin transformer (memory for time).
        extra: free-form notes kept with the package (not read by the network).
    """

    variant: str = "mome"
    feature_size: int = 48
    in_channels: int = 1
    text_dim: int = 512  # width of the raw text-encoder embedding (CLIP ViT-B-32: 512, MiniLM: 384)
    text_proj_dim: int = 256
    global_dim: int = 256
    expert_stages: tuple[str, ...] = ("dec3", "dec2", "dec1", "dec0", "out")
    expert_dim: int = 8  # common expert width D; also the dynamic head width
    router_dim: int = 16  # d_r of the router's query/key space
    router_top_k: int | None = None  # None = dense softmax over experts
    router_temperature: float = 1.0
    head_hidden: int = 8
    use_checkpoint: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.variant not in VARIANTS:
            raise ValueError(f"unknown variant {self.variant!r}; choose one of {VARIANTS}")
        if self.feature_size % 12:
            raise ValueError(
                f"feature_size must be a multiple of 12 (Swin UNETR heads), got {self.feature_size}"
            )
        unknown = [s for s in self.expert_stages if s not in DECODER_STAGES]
        if unknown:
            raise ValueError(f"unknown expert stages {unknown}; choose from {DECODER_STAGES}")
        if self.variant == "mome" and len(self.expert_stages) < 2:
            raise ValueError("MoME needs at least two expert stages to route between")
        if self.router_top_k is not None and not 1 <= self.router_top_k <= len(self.expert_stages):
            raise ValueError(
                f"router_top_k must be between 1 and {len(self.expert_stages)}, got {self.router_top_k}"
            )

    @classmethod
    def from_size(cls, size: str, **overrides: Any) -> "MoMEConfig":
        if size not in SIZES:
            raise ValueError(f"unknown size {size!r}; choose one of {sorted(SIZES)}")
        return cls(feature_size=SIZES[size], **overrides)

    @property
    def num_experts(self) -> int:
        return len(self.expert_stages)

    def stage_channels(self, stage: str) -> int:
        return STAGE_CHANNEL_FACTOR[stage] * self.feature_size

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["expert_stages"] = list(self.expert_stages)
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "MoMEConfig":
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(
                f"model config has unknown keys {unknown}: the package was written by a newer MoME; "
                "upgrade with `pip install -U mome-seg`"
            )
        data = dict(data)
        if "expert_stages" in data:
            data["expert_stages"] = tuple(data["expert_stages"])
        return cls(**data)
