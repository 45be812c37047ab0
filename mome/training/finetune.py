"""Fine-tuning: freeze presets over the model's parameter groups."""

from __future__ import annotations

from ..model import MoME

#: preset -> groups that stay trainable (see ``MoME.parameter_groups``)
FREEZE_PRESETS = {
    "none": ("backbone", "experts", "router", "heads"),  # full retrain
    "backbone": ("experts", "router", "heads"),  # "quick adapt": keep the image features
    "backbone+experts": ("router", "heads"),
    "heads-only": ("heads",),
}
#: names the Slicer training panel shows
UI_PRESETS = {"quick adapt": "backbone", "full retrain": "none"}


def apply_freeze(model: MoME, preset: str) -> list[str]:
    """Freeze every group the preset does not train; returns the trainable group names."""
    preset = UI_PRESETS.get(preset, preset)
    if preset not in FREEZE_PRESETS:
        raise ValueError(f"unknown freeze preset {preset!r}; choose one of {sorted(FREEZE_PRESETS) + sorted(UI_PRESETS)}")
    trainable = FREEZE_PRESETS[preset]
    for name, params in model.parameter_groups().items():
        for p in params:
            p.requires_grad_(name in trainable)
    return [g for g in trainable if model.parameter_groups().get(g)]
