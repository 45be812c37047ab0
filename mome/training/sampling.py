"""Training samples: a torch ``Dataset`` whose item *i* is the batch of crops of step *i*, read lazily.

Item (step, micro-step) → a generator seeded with (seed, rank, step, micro) → a dataset, picked with
probability ∝ its manifest ``weight`` → one of its training cases, uniformly → ``crops_per_case``
crop centres, class-balanced (MONAI's ``generate_label_classes_crop_centers`` over the case's stored
class points; background 1, each organ 1, each tumour/cyst ``tumour_oversampling``) → the crops,
read from the memory-mapped case → augmentation (MONAI). Because everything follows from the item's
index, the crops are the same with any number of DataLoader workers, and a resumed run draws exactly
the crops an uninterrupted run would have.

A ``torch.utils.data.DataLoader`` runs this in worker processes, with prefetching and (on CUDA)
pinned memory, so the accelerator does not wait for the CPU. Under DDP every rank samples its own
stream ((seed, rank, step)) from its own shard of each dataset's cases (``shard``), with rank and
world size from ``torch.distributed``; this works across nodes as long as each node can read the
prepared folder.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import torch
from monai.transforms import (
    Compose,
    Rand3DElasticd,
    RandAdjustContrastd,
    RandAffined,
    RandGaussianNoised,
    RandGaussianSmoothd,
    RandScaleIntensityd,
    RandShiftIntensityd,
    RandSimulateLowResolutiond,
)
from monai.transforms.utils import generate_label_classes_crop_centers

from .config import augmentation_policy
from .prepared import CaseEntry, PreparedData
from .workers import ignore_stop_signals


def crop_ratios(classes: list[str], kinds: dict[str, str], tumour_oversampling: float) -> list[float]:
    """Background 1, each organ 1, each tumour/cyst ``tumour_oversampling`` (UM oversamples ×5)."""
    return [1.0] + [tumour_oversampling if kinds.get(k) in ("tumor", "cyst") else 1.0 for k in classes]


def augmentations(policy: str = "standard") -> Compose | None:
    """The transforms applied to each crop (image in [0, 1], target K binary channels), or None.

    ``standard``: mild affine, intensity scale/shift and noise (mome-mini 1.x).
    ``strong``: for stretching few patients over many (mome-mini 2), after nnU-Net's default
    augmentation (Isensee et al., Nat Methods 18:203-211, 2021): larger rotation and scaling (patients
    differ in size), elastic deformation (anatomy differs in shape), brightness, contrast and gamma
    (scanners, contrast phases), Gaussian noise and blur, and simulated low resolution (thick slices).
    Never flips or 90° rotations: they would swap left and right structures.
    """
    policy = augmentation_policy(policy)
    if policy == "none":
        return None
    keys = ["image", "target"]
    if policy == "standard":
        return Compose([
            RandAffined(keys=keys, prob=0.2, rotate_range=(0.15, 0.15, 0.15), scale_range=(0.1, 0.1, 0.1),
                        mode=("bilinear", "nearest"), padding_mode="zeros"),
            RandScaleIntensityd(keys="image", factors=0.1, prob=0.3),
            RandShiftIntensityd(keys="image", offsets=0.1, prob=0.3),
            RandGaussianNoised(keys="image", prob=0.15, std=0.02),
        ])
    return Compose([
        # ±15° and 0.75-1.25× (nnU-Net: ±30°, 0.7-1.4×; CT patients lie in a narrower range of poses).
        RandAffined(keys=keys, prob=0.3, rotate_range=(0.26, 0.26, 0.26), scale_range=(0.25, 0.25, 0.25),
                    mode=("bilinear", "nearest"), padding_mode="zeros"),
        # A smooth random field of 1-3 voxels (3-9 mm at 3 mm spacing): organ shapes of other patients.
        Rand3DElasticd(keys=keys, prob=0.2, sigma_range=(5.0, 7.0), magnitude_range=(100.0, 300.0),
                       mode=("bilinear", "nearest"), padding_mode="zeros"),
        RandScaleIntensityd(keys="image", factors=0.25, prob=0.15),  # contrast: ×0.75-1.25
        RandShiftIntensityd(keys="image", offsets=0.1, prob=0.3),  # brightness: ±42 HU of the window
        RandAdjustContrastd(keys="image", prob=0.3, gamma=(0.7, 1.5)),
        RandGaussianNoised(keys="image", prob=0.15, std=0.03),
        RandGaussianSmoothd(keys="image", prob=0.2, sigma_x=(0.5, 1.0), sigma_y=(0.5, 1.0), sigma_z=(0.5, 1.0)),
        RandSimulateLowResolutiond(keys="image", prob=0.25, zoom_range=(0.5, 1.0)),
    ])


@dataclass
class Batch:
    image: torch.Tensor  # B×1×P³ float32
    target: torch.Tensor  # B×K×P³ uint8
    labelled: torch.Tensor  # B×K bool
    case_ids: list[str]

    def pin_memory(self) -> "Batch":
        """Called by the DataLoader's pinning thread (CUDA): page-locked memory copies asynchronously."""
        return Batch(self.image.pin_memory(), self.target.pin_memory(), self.labelled.pin_memory(), self.case_ids)


def shard(entries: list[CaseEntry], rank: int, world: int) -> list[CaseEntry]:
    """This rank's cases: every ``world``-th case of each dataset, so that ranks read different cases
    (and a node's page cache holds only its share). A dataset with fewer cases than ranks is shared whole."""
    by_dataset: dict[str, list[CaseEntry]] = {}
    for e in entries:
        by_dataset.setdefault(e.dataset, []).append(e)
    out = []
    for cases in by_dataset.values():
        out += cases[rank::world] if len(cases) >= world else cases
    return out


class TrainingCrops(torch.utils.data.Dataset):
    """Item ``step * accumulation + micro``: the crops of that (micro-)step for this rank, as a ``Batch``."""

    def __init__(self, data: PreparedData, entries: list[CaseEntry], kinds: dict[str, str], patch_size,
                 crops_per_case: int, tumour_oversampling: float, augment: bool | str, seed: int, rank: int = 0,
                 accumulation: int = 1, steps: int = 0):
        if not entries:
            raise ValueError("there are no training cases to sample from; mark some cases with split: train")
        self.data = data
        self.patch = tuple(int(p) for p in patch_size)
        self.crops_per_case = crops_per_case
        self.ratios = crop_ratios(data.classes, kinds, tumour_oversampling)
        self.transforms = augmentations(augment)
        self.seed, self.rank, self.accumulation, self.steps = seed, rank, accumulation, steps
        self.by_dataset: dict[str, list[CaseEntry]] = {}
        for e in entries:
            self.by_dataset.setdefault(e.dataset, []).append(e)
        self.dataset_names = sorted(self.by_dataset)
        weights = np.array([data.dataset_weights.get(n, 1.0) for n in self.dataset_names], float)
        self.dataset_p = weights / weights.sum()

    def __len__(self) -> int:
        return self.steps * self.accumulation

    def pick(self, rng: np.random.Generator) -> CaseEntry:
        name = self.dataset_names[rng.choice(len(self.dataset_names), p=self.dataset_p)]
        cases = self.by_dataset[name]
        return cases[rng.integers(len(cases))]

    def __getitem__(self, index: int) -> Batch:
        step, micro = divmod(int(index), self.accumulation)
        rng = np.random.default_rng([self.seed, self.rank, step, micro])
        entry = self.pick(rng)
        state = np.random.RandomState(int(rng.integers(2**31 - 1)))
        centres = generate_label_classes_crop_centers(
            self.patch, self.crops_per_case, entry.shape, self.data.points(entry), self.ratios, state,
            allow_smaller=True, warn=False)
        if self.transforms is not None:
            self.transforms.set_random_state(state=state)
        images, targets = [], []
        for centre in centres:
            start = [int(c) - p // 2 for c, p in zip(centre, self.patch)]
            image, target = self.data.read_crop(entry, start, self.patch)
            if self.transforms is not None:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    out = self.transforms({"image": image, "target": target})
                image = torch.as_tensor(np.asarray(out["image"]), dtype=torch.float32)
                target = torch.as_tensor(np.asarray(out["target"])).round().to(torch.uint8)
            images.append(torch.as_tensor(image))
            targets.append(torch.as_tensor(target))
        labelled = torch.zeros(len(centres), len(self.data.classes), dtype=torch.bool)
        labelled[:, list(entry.labelled)] = True
        return Batch(torch.stack(images), torch.stack(targets), labelled, [entry.id] * len(centres))


def training_loader(crops: TrainingCrops, start_step: int, num_workers: int, pin_memory: bool,
                    prefetch_factor: int = 2) -> torch.utils.data.DataLoader:
    """The batches of steps ``start_step`` … ``steps - 1`` in order (items are whole batches)."""
    order = range(start_step * crops.accumulation, len(crops))
    return torch.utils.data.DataLoader(
        crops, batch_size=None, sampler=order, num_workers=num_workers, pin_memory=pin_memory,
        prefetch_factor=prefetch_factor if num_workers > 0 else None,
        worker_init_fn=ignore_stop_signals if num_workers > 0 else None,
    )
