"""Experiment tracking: TensorBoard event files in ``<output>/tensorboard``, written by rank 0.

Every scalar is plotted against the optimisation step (``tensorboard --logdir OUTPUT/tensorboard``):

- ``train/loss``: the step's loss, averaged over the ranks; ``train/lr``: the learning rate it used.
- ``time/step_s``: wall time of the step, data included; ``time/data_wait_s``: the part of it spent
  blocked on the DataLoader (``next(batches)``). A data wait well above zero means the accelerator
  is starved: raise ``data.num_workers``.
- ``val/dice/<class>`` and ``val/mean_dice`` at each validation; ``time/validation_s``.

The config is recorded once as text. A resumed run opens the same folder with ``purge_step`` set to
its first new step, so TensorBoard drops what the interrupted run logged after its last checkpoint
and the curves continue without a doubled stretch. This sits next to ``--progress json`` (for the
Slicer panel), not instead of it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

TENSORBOARD_FOLDER = "tensorboard"


class NoTracking:
    """What non-zero ranks and ``tensorboard: false`` runs get: every call does nothing."""

    def train_step(self, step: int, loss: float, lr: float, step_s: float, data_wait_s: float) -> None:
        pass

    def validation(self, step: int, dice: dict[str, float], mean_dice: float, seconds: float) -> None:
        pass

    def close(self) -> None:
        pass


class TensorBoardTracking(NoTracking):
    def __init__(self, folder: Path, start_step: int = 0, config: dict[str, Any] | None = None):
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError as exc:  # a dependency of mome-seg; missing only in a hand-made environment
            raise ValueError(f"TensorBoard logging needs the 'tensorboard' package ({exc}); install it with "
                             "`pip install tensorboard`, or turn logging off with `tensorboard: false` in the "
                             "config (or --no-tensorboard)") from exc
        self.folder = Path(folder)
        self.writer = SummaryWriter(str(self.folder), purge_step=start_step + 1 if start_step else None)
        if config is not None and not start_step:
            # Indented four spaces: TensorBoard renders text as Markdown, and a code block keeps YAML's layout.
            plain = json.loads(json.dumps(config))  # tuples → lists, which safe_dump can write
            text = "\n".join(f"    {line}" for line in yaml.safe_dump(plain, sort_keys=False).splitlines())
            self.writer.add_text("config", text, 0)

    def train_step(self, step: int, loss: float, lr: float, step_s: float, data_wait_s: float) -> None:
        w = self.writer
        w.add_scalar("train/loss", loss, step)
        w.add_scalar("train/lr", lr, step)
        w.add_scalar("time/step_s", step_s, step)
        w.add_scalar("time/data_wait_s", data_wait_s, step)

    def validation(self, step: int, dice: dict[str, float], mean_dice: float, seconds: float) -> None:
        for key, value in dice.items():
            self.writer.add_scalar(f"val/dice/{key}", value, step)
        self.writer.add_scalar("val/mean_dice", mean_dice, step)
        self.writer.add_scalar("time/validation_s", seconds, step)
        self.writer.flush()  # validations are rare and the numbers people wait for

    def close(self) -> None:
        self.writer.close()


def open_tracking(output: Path, enabled: bool, start_step: int = 0,
                  config: dict[str, Any] | None = None) -> NoTracking:
    """TensorBoard logging into ``output/tensorboard`` when ``enabled`` (rank 0 with ``tensorboard: true``)."""
    return TensorBoardTracking(Path(output) / TENSORBOARD_FOLDER, start_step, config) if enabled else NoTracking()
