"""Training runs: exact resume, fine-tuning presets, two gloo processes in sync, package output."""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp

from mome.model import MoME, MoMEConfig
from mome.package import ModelPackage
from mome.training.checkpoint import load_checkpoint
from mome.training.config import DataSection, OptimSection, TrainConfig
from mome.training.finetune import apply_freeze
from mome.training.trainer import Trainer
from training_fixtures import base_package, phantom_manifest

PATCH = (64, 64, 64)


def config(tmp_path: Path, base: Path, manifest: Path, out: str, steps: int, **kw) -> TrainConfig:
    return TrainConfig(
        name="ft", version="1.1.0", output=str(tmp_path / out), device="cpu", base_model=str(base),
        validate_every=1000, checkpoint_every=1, freeze=kw.pop("freeze", "none"),
        data=DataSection(manifest=str(manifest), spacing=(3.0, 3.0, 3.0), patch_size=PATCH, crops_per_case=1,
                         augment=True),
        optim=OptimSection(steps=steps, lr=1e-3, warmup_steps=1), **kw,
    )


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    folder = tmp_path_factory.mktemp("train")
    return folder, base_package(folder, PATCH), phantom_manifest(folder / "data", n_train=2, n_val=1)


class InterruptAt:
    """A progress sink that presses Ctrl-C once the given step has finished."""

    def __init__(self, step):
        self.step = step

    def update(self, stage, fraction, message="", **extra):
        if extra.get("step") == self.step:
            raise KeyboardInterrupt

    def done(self, **result):
        pass

    def error(self, message, details=""):
        pass


@pytest.fixture
def one_thread():
    # With several threads, CPU kernels may sum in an order that depends on memory alignment, which
    # differs between a fresh and a resumed process: ~1e-8 apart. One thread makes "same" exact.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_resume_continues_exactly(setup, tmp_path, one_thread):
    folder, base, manifest = setup
    Trainer(config(tmp_path, base, manifest, "straight", 3)).run()
    with pytest.raises(KeyboardInterrupt):
        Trainer(config(tmp_path, base, manifest, "interrupted", 3), progress=InterruptAt(2)).run()
    assert load_checkpoint(tmp_path / "interrupted")["step"] == 2
    result = Trainer(config(tmp_path, base, manifest, "interrupted", 3)).run(resume=True)
    a = load_checkpoint(tmp_path / "straight")
    b = load_checkpoint(tmp_path / "interrupted")
    assert a["step"] == b["step"] == 3
    for key, value in a["model"].items():
        assert torch.equal(value, b["model"][key]), key
    # The result is a new package version with provenance; the base is untouched.
    package = ModelPackage.load(result.package_path)
    assert package.info.version == "1.1.0" and package.info.provenance["base_model"] == "base 1.0.0"
    assert package.info.provenance["dataset"]["train_cases"] == ["phantom/case0", "phantom/case1"]
    assert ModelPackage.load(base).info.version == "1.0.0"


def test_freeze_preset_keeps_backbone_fixed(setup, tmp_path):
    folder, base, manifest = setup
    result = Trainer(config(tmp_path, base, manifest, "quick", 2, freeze="quick adapt")).run()
    before, after = ModelPackage.load(base).state_dict, ModelPackage.load(result.package_path).state_dict
    backbone = [k for k in before if k.startswith("backbone.")]
    heads = [k for k in before if k.startswith("controller.")]
    assert all(torch.equal(before[k], after[k]) for k in backbone)
    assert any(not torch.equal(before[k], after[k]) for k in heads)


def test_freeze_presets_select_parameter_groups():
    model = MoME(MoMEConfig.from_size("tiny", text_dim=8))
    assert apply_freeze(model, "heads-only") == ["heads"]
    assert not any(p.requires_grad for p in model.backbone.parameters())
    assert all(p.requires_grad for p in model.controller.parameters())
    with pytest.raises(ValueError, match="unknown freeze preset"):
        apply_freeze(model, "everything")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _ddp_worker(rank: int, world: int, port: int, tmp: str, base: str, manifest: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), WORLD_SIZE=str(world), RANK=str(rank),
                      LOCAL_RANK=str(rank))
    torch.set_num_threads(1)
    cfg = config(Path(tmp), Path(base), Path(manifest), "ddp", 2)
    trainer = Trainer(cfg)
    trainer.run()
    state = {k: v.tolist() for k, v in list(trainer.model.state_dict().items())[:: 40]}
    Path(tmp, f"rank{rank}.json").write_text(json.dumps(state))
    torch.distributed.destroy_process_group()


@pytest.mark.slow
def test_two_gloo_processes_stay_in_sync(setup, tmp_path):
    folder, base, manifest = setup
    mp.spawn(_ddp_worker, args=(2, _free_port(), str(tmp_path), str(base), str(manifest)), nprocs=2, join=True)
    r0 = json.loads((tmp_path / "rank0.json").read_text())
    r1 = json.loads((tmp_path / "rank1.json").read_text())
    assert r0 == r1
    start = ModelPackage.load(base).state_dict
    changed = [k for k in r0 if k in start and torch.tensor(r0[k]).shape == start[k].shape
               and not torch.allclose(torch.tensor(r0[k]), start[k])]
    assert changed, "the synchronised models did not train"
    assert (tmp_path / "ddp" / "checkpoint.pt").is_file()  # rank 0 wrote
