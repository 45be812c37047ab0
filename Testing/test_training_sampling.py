"""Training crops from a prepared folder: dataset weights, partial labels, DDP shards, and crops that do
not depend on the number of DataLoader workers (what makes --resume exact with workers)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from mome.training.config import DataSection, OptimSection, TrainConfig
from mome.training.manifest import ManifestError, load_manifest
from mome.training.prepared import PreparedData
from mome.training.sampling import TrainingCrops, shard, training_loader
from mome.training.trainer import Trainer
from training_fixtures import write_phantom_case

KINDS = {"liver": "organ", "spleen": "organ"}


class FixedText:
    encoder_id = "fixed-test"
    dim = 16

    def embed_names(self, names):
        return torch.stack([torch.full((16,), float(len(n))) for n in names])


def two_dataset_manifest(folder, weights=(3.0, 1.0)):
    """Dataset "both" (liver and spleen, 2 cases) and dataset "liver-only" (spleen unknown, 1 case)."""
    cases = {name: write_phantom_case(folder, name, seed=i) for i, name in enumerate(["a0", "a1", "b0"])}
    datasets = [
        {"name": "both", "weight": weights[0], "label_map": {"1": "liver", "2": "spleen"},
         "cases": [{"id": n, "image": cases[n]["image"].name, "labels": cases[n]["labels"].name} for n in ("a0", "a1")]},
        {"name": "liver-only", "weight": weights[1], "label_map": {"1": "liver", "2": None},
         "cases": [{"id": "b0", "image": cases["b0"]["image"].name, "labels": cases["b0"]["labels"].name}]},
    ]
    path = folder / "manifest.json"
    path.write_text(json.dumps({"name": "two", "datasets": datasets}))
    return path


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    folder = tmp_path_factory.mktemp("sampling")
    cfg = TrainConfig(output=str(folder / "run"), device="cpu",
                      data=DataSection(manifest=str(two_dataset_manifest(folder / "data")), spacing=(3.0, 3.0, 3.0),
                                       patch_size=(32, 32, 32)))
    return PreparedData.open(Trainer(cfg, text_encoder=FixedText()).prepare_to(folder / "prepared"))


def crops(data, augment=False, steps=6, **kw):
    return TrainingCrops(data, data.train, KINDS, (32, 32, 32), 2, 5.0, augment, seed=3, steps=steps, **kw)


def test_datasets_are_drawn_in_proportion_to_their_weights(data):
    assert data.dataset_weights == {"both": 3.0, "liver-only": 1.0}
    sampler = crops(data)
    picks = [sampler.pick(np.random.default_rng([3, 0, step, 0])).dataset for step in range(2000)]
    share = picks.count("both") / len(picks)
    assert abs(share - 0.75) < 0.04  # binomial sd ~0.01; uniform datasets would give 0.5


def test_unknown_classes_stay_unknown_in_crops(data):
    """liver-only's cases never annotate the spleen: its channel is masked (labelled False) and empty,
    although the phantom has a spleen there: unknown is not background."""
    entry = next(e for e in data.train if e.dataset == "liver-only")
    assert entry.labelled == (0,)
    sampler = crops(data, steps=40)
    seen = set()
    for i in range(40):
        batch = sampler[i]
        seen.add(batch.case_ids[0])
        if batch.case_ids[0] == "b0":
            assert batch.labelled[:, 0].all() and not batch.labelled[:, 1].any()
            assert batch.target[:, 1].sum() == 0
        else:
            assert batch.labelled.all()
    assert seen == {"a0", "a1", "b0"}


def test_crops_do_not_depend_on_the_number_of_workers_or_the_start(data):
    sampler = crops(data, augment=True, steps=4)
    direct = [sampler[i] for i in range(4)]
    with_workers = list(training_loader(sampler, 0, num_workers=2, pin_memory=False))
    resumed = list(training_loader(sampler, 2, num_workers=0, pin_memory=False))  # --resume at step 2
    assert len(with_workers) == 4 and len(resumed) == 2
    for a, b in zip(direct, with_workers):
        assert torch.equal(a.image, b.image) and torch.equal(a.target, b.target) and a.case_ids == b.case_ids
    for a, b in zip(direct[2:], resumed):
        assert torch.equal(a.image, b.image) and torch.equal(a.target, b.target)
    assert direct[0].image.shape == (2, 1, 32, 32, 32) and direct[0].target.shape == (2, 2, 32, 32, 32)
    assert not torch.equal(direct[0].image, direct[1].image)


def test_ranks_get_disjoint_shards_and_small_datasets_are_shared(data):
    rank0, rank1 = shard(data.train, 0, 2), shard(data.train, 1, 2)
    both0 = {e.id for e in rank0 if e.dataset == "both"}
    both1 = {e.id for e in rank1 if e.dataset == "both"}
    assert both0 | both1 == {"a0", "a1"} and not both0 & both1
    assert [e.id for e in rank0 if e.dataset == "liver-only"] == ["b0"] == [e.id for e in rank1 if e.dataset == "liver-only"]
    # and each rank draws its own stream
    a, b = crops(data, rank=0)[0], crops(data, rank=1)[0]
    assert not torch.equal(a.image, b.image)


@pytest.mark.parametrize("weight", [0, -1, "heavy", float("nan")])
def test_bad_weights_are_reported(tmp_path, weight):
    path = two_dataset_manifest(tmp_path, weights=(weight, 1.0))
    with pytest.raises(ManifestError, match="both: weight must be a positive number"):
        load_manifest(path)


def test_strong_augmentation_deforms_image_and_labels_together(data):
    plain, strong = crops(data, augment="none", steps=8), crops(data, augment="strong", steps=8)
    changed = 0
    for step in range(8):
        a, b = plain[step], strong[step]
        assert b.image.shape == a.image.shape and b.target.shape == a.target.shape
        assert set(torch.unique(b.target).tolist()) <= {0, 1}  # labels stay binary (nearest)
        assert b.labelled.equal(a.labelled) and b.case_ids == a.case_ids  # the same crop, augmented
        changed += not torch.equal(a.image, b.image)
    assert changed >= 4  # with these probabilities nearly every crop gets at least one transform


def test_augment_policy_names_are_checked():
    assert TrainConfig(data=DataSection(augment="strong")).data.augment == "strong"
    with pytest.raises(ValueError, match="strong"):
        TrainConfig(data=DataSection(augment="heavy"))
