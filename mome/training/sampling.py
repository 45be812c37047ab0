"""Training samples: prepared cases, datasets sampled uniformly, class-balanced crops, augmentation.

Randomness is derived from (seed, rank, step), not from a running generator, so a resumed run draws
exactly the crops an uninterrupted run would have drawn.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import torch
from monai.data import CacheDataset
from monai.transforms import (
    Compose,
    MapTransform,
    RandAffined,
    RandCropByLabelClassesd,
    RandGaussianNoised,
    RandScaleIntensityd,
    RandShiftIntensityd,
    SpatialPadd,
)

from .prepared import PreparedCase


class CaseArraysd(MapTransform):
    """A prepared case → the dict of arrays the crop and augmentation transforms read."""

    def __init__(self):
        super().__init__(keys=["case"])

    def __call__(self, data):
        prepared: PreparedCase = data["case"]
        labelled_any = prepared.target[prepared.labelled].any(axis=0) if prepared.labelled.any() else \
            np.zeros(prepared.image.shape[1:], bool)
        # Channel 0 = background of the labelled classes; crops pick among channels by ratio.
        crop_label = np.concatenate([(~labelled_any)[None], prepared.target.astype(bool)]).astype(np.uint8)
        return {
            "image": prepared.image,
            "target": prepared.target,
            "crop_label": crop_label,
            "labelled": prepared.labelled,
            "id": prepared.id,
            "dataset": prepared.dataset,
        }


def crop_ratios(classes: list[str], kinds: dict[str, str], tumour_oversampling: float) -> list[float]:
    """Background 1, each organ 1, each tumour/cyst ``tumour_oversampling`` (UM oversamples ×5)."""
    return [1.0] + [tumour_oversampling if kinds.get(k) in ("tumor", "cyst") else 1.0 for k in classes]


def build_transforms(classes, kinds, patch_size, crops_per_case, tumour_oversampling, augment: bool) -> Compose:
    keys = ["image", "target"]
    steps = [
        CaseArraysd(),
        SpatialPadd(keys=[*keys, "crop_label"], spatial_size=patch_size),
        RandCropByLabelClassesd(
            keys=keys,
            label_key="crop_label",
            spatial_size=patch_size,
            ratios=crop_ratios(classes, kinds, tumour_oversampling),
            num_classes=len(classes) + 1,
            num_samples=crops_per_case,
            warn=False,
        ),
    ]
    if augment:
        # No flips and no 90° rotations: they would swap left and right structures.
        steps += [
            RandAffined(keys=keys, prob=0.2, rotate_range=(0.15, 0.15, 0.15), scale_range=(0.1, 0.1, 0.1),
                        mode=("bilinear", "nearest"), padding_mode="zeros"),
            RandScaleIntensityd(keys="image", factors=0.1, prob=0.3),
            RandShiftIntensityd(keys="image", offsets=0.1, prob=0.3),
            RandGaussianNoised(keys="image", prob=0.15, std=0.02),
        ]
    return Compose(steps)


@dataclass
class Batch:
    image: torch.Tensor  # B×1×P³
    target: torch.Tensor  # B×K×P³
    labelled: torch.Tensor  # B×K bool
    case_ids: list[str]


class UniformSampler:
    """Pick a dataset uniformly, then one of its training cases, then class-balanced crops."""

    def __init__(self, cases: list[PreparedCase], transforms: Compose, seed: int, rank: int = 0,
                 cache_workers: int = 0):
        self.cases = cases
        self.transforms = transforms
        self.seed, self.rank = seed, rank
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            self.dataset = CacheDataset([{"case": c} for c in cases], transforms, cache_rate=1.0,
                                        num_workers=cache_workers, progress=False)
        self.by_dataset: dict[str, list[int]] = {}
        for i, c in enumerate(cases):
            self.by_dataset.setdefault(c.dataset, []).append(i)
        self.dataset_names = sorted(self.by_dataset)

    def sample(self, step: int, micro: int = 0) -> Batch:
        rng = np.random.default_rng([self.seed, self.rank, step, micro])
        name = self.dataset_names[rng.integers(len(self.dataset_names))]
        index = self.by_dataset[name][rng.integers(len(self.by_dataset[name]))]
        self.transforms.set_random_state(seed=int(rng.integers(2**31 - 1)))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            crops = self.dataset[index]
        crops = crops if isinstance(crops, list) else [crops]
        image = torch.stack([torch.as_tensor(np.asarray(c["image"]), dtype=torch.float32) for c in crops])
        target = torch.stack([torch.as_tensor(np.asarray(c["target"])).round().to(torch.uint8) for c in crops])
        labelled = torch.as_tensor(np.stack([c["labelled"] for c in crops]))
        return Batch(image, target, labelled, [crops[0]["id"]] * len(crops))
