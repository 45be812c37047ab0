"""The settings of one segmentation run (the panel keeps them in the scene's parameter node,
``parameter_node.py``; scripts pass them to ``MoMESegmentationLogic.segment``)."""

from __future__ import annotations

from dataclasses import dataclass

#: Device choices: (value given to ``mome segment --device``, label shown in the panel).
DEVICES: tuple[tuple[str, str], ...] = (("auto", "Auto (GPU if available)"), ("cuda", "GPU"), ("cpu", "CPU"))
DEVICE_VALUES = tuple(value for value, _ in DEVICES)

# The opt-ins, as the panel's check boxes name them (the .ui file uses the same words; messages
# quote them, so that "tick '…'" always names a box that exists) and as scripts pass them.
ALLOW_NOT_LEARNED_LABEL = "Also segment structures this model has not learned"
ALLOW_ZERO_SHOT_LABEL = "Also segment structures from their name alone (zero-shot)"
ALLOW_NOT_LEARNED_ARGUMENT = "allow_not_learned=True"
ALLOW_ZERO_SHOT_ARGUMENT = "allow_zero_shot=True"
#: What "Segment anyway" does after a failed input check, in the panel and in a script.
SEGMENT_ANYWAY_LABEL = "Segment anyway"
SKIP_INPUT_CHECK_ARGUMENT = "skip_input_check=True"


@dataclass
class SegmentationParameters:
    prompts: str = ""
    model: str | None = None  # what ``--model`` gets: an installed package path or name; None = default
    device: str = "auto"
    fast: bool = False
    # Structures the model's own figures say it has not learned, and structures it was never
    # trained on (zero-shot, including names outside the vocabulary), are refused unless opted in.
    allow_not_learned: bool = False
    allow_zero_shot: bool = False
    # Set for one run once the user (dialog) or script chose to segment a volume that does not look
    # like CT in Hounsfield units; never stored in the scene.
    skip_input_check: bool = False
    show_3d: bool = True

    def validate(self) -> list[str]:
        """Problems that keep the run from starting, in words for the panel (empty = ready)."""
        problems = []
        if not self.prompts.strip(" ,;\n\t"):
            problems.append("Type the structures to segment, e.g. 'liver, stomach, aorta', or add a preset.")
        if self.device not in DEVICE_VALUES:
            problems.append(f"Unknown device {self.device!r}; choose one of {', '.join(DEVICE_VALUES)}.")
        return problems
