"""TensorBoard tracking: a short run writes event files whose scalars read back at the right steps."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from mome.training.config import DataSection, OptimSection, TrainConfig
from mome.training.trainer import Trainer
from training_fixtures import base_package, phantom_manifest, tensorboard_scalars

pytest.importorskip("tensorboard", reason="tensorboard (a dependency of mome-seg) is not installed")

PATCH = (64, 64, 64)  # the smallest patch the tiny Swin UNETR trains on (32³ leaves a 1-voxel bottleneck)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """(base package, prepared folder): prepared once, so that each run below only trains."""
    folder = tmp_path_factory.mktemp("tb")
    base, manifest = base_package(folder, PATCH), phantom_manifest(folder / "data", n_train=1, n_val=1)
    prepared = Trainer(run_config(folder / "prep", base, manifest)).prepare_to(folder / "prepared")
    return base, prepared


def run_config(folder: Path, base: Path, data: Path, steps: int = 3, **kw) -> TrainConfig:
    """A 3-step fine-tune of the tiny base; ``data`` is a manifest or a prepared folder."""
    settings = dict(name="tb", version="1.0.1", output=str(folder), device="cpu", base_model=str(base),
                    validate_every=2, checkpoint_every=100)
    return TrainConfig(**{**settings, **kw},
                       data=DataSection(**{"prepared" if data.is_dir() else "manifest": str(data)},
                                        crops_per_case=1, augment=False, num_workers=0),
                       optim=OptimSection(steps=steps, lr=1e-3, warmup_steps=1))


def test_short_run_writes_scalars_per_step(data, tmp_path):
    torch.set_num_threads(1)
    base, prepared = data
    Trainer(run_config(tmp_path / "run", base, prepared)).run()
    logged = tensorboard_scalars(tmp_path / "run" / "tensorboard")
    for tag in ("train/loss", "train/lr", "time/step_s", "time/data_wait_s"):
        assert [step for step, _ in logged[tag]] == [1, 2, 3], tag
    # Validation at step 2 (validate_every) and at the last step, per class and as the mean.
    for tag in ("val/mean_dice", "val/dice/liver", "val/dice/spleen", "time/validation_s"):
        assert [step for step, _ in logged[tag]] == [2, 3], tag
    assert all(0.0 <= v <= 1.0 for _, v in logged["val/dice/liver"])
    # The lr is the one each step used: warm-up 1 step ramps 1e-3 × (step + 1) / 2, then cosine.
    assert logged["train/lr"][0][1] == pytest.approx(5e-4)
    assert all(wait <= step_s for (_, wait), (_, step_s) in zip(logged["time/data_wait_s"], logged["time/step_s"]))
    assert all(v > 0 for _, v in logged["time/step_s"])


def test_tensorboard_false_writes_none(data, tmp_path):
    base, prepared = data
    Trainer(run_config(tmp_path / "quiet", base, prepared, steps=1, tensorboard=False, validate_every=100)).run()
    assert (tmp_path / "quiet" / "checkpoint.pt").is_file()
    assert not (tmp_path / "quiet" / "tensorboard").exists()


def test_config_rejects_a_non_boolean_switch():
    with pytest.raises(ValueError, match="tensorboard must be true or false"):
        TrainConfig.from_dict({"tensorboard": "no"})
