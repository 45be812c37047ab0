"""The settings of one segmentation run (the panel keeps them in the scene's parameter node,
``parameter_node.py``; scripts pass them to ``MoMESegmentationLogic.segment``)."""

from __future__ import annotations

from dataclasses import dataclass

#: Device choices: (value given to ``mome segment --device``, label shown in the panel).
DEVICES: tuple[tuple[str, str], ...] = (("auto", "Auto (GPU if available)"), ("cuda", "GPU"), ("cpu", "CPU"))
DEVICE_VALUES = tuple(value for value, _ in DEVICES)


@dataclass
class SegmentationParameters:
    prompts: str = ""
    model: str | None = None  # what ``--model`` gets: an installed package path or name; None = default
    device: str = "auto"
    fast: bool = False
    allow_free_text: bool = False
    show_3d: bool = True

    def validate(self) -> list[str]:
        """Problems that keep the run from starting, in words for the panel (empty = ready)."""
        problems = []
        if not self.prompts.strip(" ,;\n\t"):
            problems.append("Type the structures to segment, e.g. 'liver, spleen, left kidney', or add a preset.")
        if self.device not in DEVICE_VALUES:
            problems.append(f"Unknown device {self.device!r}; choose one of {', '.join(DEVICE_VALUES)}.")
        return problems
