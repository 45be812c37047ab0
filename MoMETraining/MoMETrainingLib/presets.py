"""Training presets: what the panel's "Quick adapt" and "Full retrain" mean for the engine.

* **Quick adapt** runs ``mome finetune --preset backbone``: the Swin UNETR backbone stays frozen,
  experts, router and class heads adapt to the local labels in a few hundred steps.
* **Full retrain** runs ``mome train CONFIG`` with a config written from the base package: every
  parameter group trains (freeze ``none``), starting from the base weights, for longer, with a
  lower learning rate and more validation.

The engine's own names for the freeze presets are in ``mome.training.finetune.FREEZE_PRESETS``;
the values here must stay among them (the tests check it).
"""

from __future__ import annotations

from dataclasses import dataclass, replace


@dataclass(frozen=True)
class TrainingPreset:
    key: str  # stable id, stored in settings
    title: str  # shown in the preset combo box
    description: str  # shown as its tool tip
    command: str  # engine sub-command: "finetune" or "train"
    freeze: str  # engine freeze preset (mome.training.finetune.FREEZE_PRESETS)
    steps: int
    lr: float
    validate_every: int | None = None  # None: the engine's default for the command
    checkpoint_every: int | None = None

    def with_overrides(self, steps: int | None = None, lr: float | None = None) -> "TrainingPreset":
        """The preset with the user's step count / learning rate where given."""
        return replace(self, steps=int(steps) if steps else self.steps, lr=float(lr) if lr else self.lr)


QUICK_ADAPT = TrainingPreset(
    key="quick",
    title="Quick adapt",
    description="Keep the image backbone frozen; adapt experts, router and class heads to your labels "
    "(minutes on a GPU). Best for a few cases.",
    command="finetune",
    freeze="backbone",
    steps=200,
    lr=5e-4,
)

FULL_RETRAIN = TrainingPreset(
    key="full",
    title="Full retrain",
    description="Train every part of the network, starting from the base model's weights "
    "(an hour or more on a GPU). Needs more labelled cases.",
    command="train",
    freeze="none",
    steps=2000,
    lr=1e-4,
    validate_every=100,
    checkpoint_every=50,
)

PRESETS: dict[str, TrainingPreset] = {p.key: p for p in (QUICK_ADAPT, FULL_RETRAIN)}


def preset(key: str) -> TrainingPreset:
    """The preset with this key (or title, case-insensitive)."""
    for p in PRESETS.values():
        if key in (p.key, p.title) or key.lower() == p.title.lower():
            return p
    raise KeyError(f"unknown training preset {key!r}; choose one of {sorted(PRESETS)}")
