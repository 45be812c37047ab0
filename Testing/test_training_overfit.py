"""Capacity check: the training engine makes a tiny MoME fit one small real CT crop (Dice > 0.9).

If the loss, the target construction, the crop sampling or the optimiser were broken, a network this
size could not memorise the liver in a 64×64×32 crop in a few dozen steps. (Swin UNETR needs every
side to be a multiple of 32 and more than one voxel at its 1/32 bottleneck: 64×64×32 is the
cheapest real patch, a quarter of 64³.)
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
import torch

from mome.training.config import DataSection, ModelSection, OptimSection, TrainConfig
from mome.training.trainer import Trainer

CLASSES = {5: "liver"}  # TotalSegmentator label value in example_seg_fast_force_split
PATCH = (64, 64, 32)  # voxels (x, y, z) at the CT's own 3 mm spacing


class FixedText:
    """Distinct fixed vectors per prompt: the subject here is the vision side, not the text encoder."""

    encoder_id = "fixed-test"
    dim = 16

    def embed_names(self, names):
        return torch.stack([torch.linspace(-1, 1, 16) * (i + 1) for i, _ in enumerate(names)])


@pytest.fixture
def crop_manifest(shared_data: Path, tmp_path: Path) -> Path:
    folder = shared_data / "totalseg_example"
    labels = sitk.GetArrayFromImage(sitk.ReadImage(str(folder / "example_seg_fast_force_split.nii.gz")))
    z, y, x = (int(round(c)) for c in np.argwhere(labels == 5).mean(axis=0))  # the liver's centre
    z = min(z, labels.shape[0] - PATCH[2] // 2)  # keep the crop inside the scan
    roi = {axis: [c - p // 2, c + p // 2] for axis, c, p in zip("xyz", (x, y, z), PATCH)}
    case = {"image": str(folder / "example_ct.nii.gz"), "labels": str(folder / "example_seg_fast_force_split.nii.gz"),
            "roi": roi}
    label_map = {str(v): CLASSES.get(v) for v in np.unique(labels).tolist() if v}
    manifest = {"name": "one-crop", "datasets": [{"name": "crop", "label_map": label_map, "cases": [
        {**case, "id": "liver-crop", "split": "train"},
        {**case, "id": "liver-crop-again", "split": "val"},  # the same voxels: this is a fit, not a test
    ]}]}
    path = tmp_path / "manifest.json"
    path.write_text(json.dumps(manifest))
    return path


def test_a_tiny_model_fits_one_real_crop(crop_manifest: Path, tmp_path: Path):
    torch.manual_seed(0)
    cfg = TrainConfig(
        name="overfit", output=str(tmp_path / "run"), device="cpu", validate_every=10_000, checkpoint_every=10_000,
        keep="last", classes=list(CLASSES.values()),
        model=ModelSection(size="tiny"),
        data=DataSection(manifest=str(crop_manifest), spacing=(3.0, 3.0, 3.0), patch_size=PATCH,
                         crops_per_case=1, augment=False),
        optim=OptimSection(steps=40, lr=3e-3, warmup_steps=5),
    )
    started = time.perf_counter()
    result = Trainer(cfg, text_encoder=FixedText()).run()
    print(f"fit in {time.perf_counter() - started:.1f} s: Dice {result.best_metrics}")
    assert set(result.best_metrics) == set(CLASSES.values())
    for key, dice in result.best_metrics.items():
        assert dice > 0.9, f"{key}: Dice {dice:.3f} after {cfg.optim.steps} steps"
