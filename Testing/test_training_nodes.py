"""Several nodes for real: two ``torchrun`` agents on this machine, one rank each, rendezvous over c10d.

This is the README's multi-node command (``--nnodes 2 --rdzv_backend c10d --rdzv_endpoint HOST:PORT``)
with HOST = 127.0.0.1 and gloo instead of NCCL. The run is stopped the way a scheduler stops a job
(SIGTERM to both torchrun process groups) after it has written a checkpoint, then resumed with
``--resume``: both nodes exit 0, every rank held the same weights at each checkpoint (the digests the
ranks record), and the resumed run's history and TensorBoard curve continue the stopped one's
without a gap or a repeat.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from mome.training.checkpoint import CHECKPOINT, load_checkpoint, state_digest
from mome.training.config import DataSection, OptimSection, TrainConfig
from mome.training.trainer import Trainer
from training_fixtures import base_package, phantom_manifest, tensorboard_scalars

PATCH = (64, 64, 64)  # the smallest patch the tiny Swin UNETR trains on
STEPS = 40  # never reached: the run is stopped after its first checkpoint


def _gloo_or_skip() -> None:
    import torch.distributed as dist

    if not dist.is_available() or not dist.is_gloo_available():
        pytest.skip("torch.distributed with the gloo backend is not available in this PyTorch build")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def run_config(tmp_path_factory) -> Path:
    """A config file for a fine-tune of the tiny base on prepared phantoms (two training cases: one per rank)."""
    _gloo_or_skip()
    folder = tmp_path_factory.mktemp("nodes")
    base = base_package(folder, PATCH)
    manifest = phantom_manifest(folder / "data", n_train=2, n_val=0)
    cfg = TrainConfig(name="nodes", version="1.0.1", output=str(folder / "run"), device="cpu", base_model=str(base),
                      checkpoint_every=1, validate_every=1000,
                      data=DataSection(manifest=str(manifest), crops_per_case=1, augment=False, num_workers=0),
                      optim=OptimSection(steps=STEPS, lr=1e-3, warmup_steps=1))
    cfg.data.prepared = str(Trainer(cfg).prepare_to(folder / "prepared"))
    cfg.data.manifest = ""
    path = folder / "config.json"
    path.write_text(json.dumps(cfg.to_dict()))
    return path


def launch_nodes(config: Path, port: int, logs: Path, *args: str) -> list[subprocess.Popen]:
    """Two torchrun agents ("nodes" 0 and 1), each in its own process group, as on two machines."""
    # torchrun waits 30 s after passing SIGTERM on before it kills its ranks; a step of this test can take
    # longer than that on 2 busy CPU cores (an H200 step of the paper model: 0.2 s), so give it 300 s.
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1", "TORCH_ELASTIC_SHUTDOWN_TIMEOUT": "300"}
    nodes = []
    # The same command on both nodes: c10d rendezvous hands out the ranks (--node_rank is for the static
    # backend only). --local_addr: the address this agent gives its ranks, here the loopback one.
    command = [sys.executable, "-m", "torch.distributed.run", "--nnodes", "2", "--nproc_per_node", "1",
               "--rdzv_backend", "c10d", "--rdzv_endpoint", f"127.0.0.1:{port}", "--rdzv_id", "mome-nodes-test",
               "--local_addr", "127.0.0.1", "-m", "mome.cli.main", "train", str(config), "--progress", "none", *args]
    for node in (0, 1):
        log = open(logs / f"node{node}-{int(time.time() * 1000)}.log", "w")  # noqa: SIM115 - closed by the OS at exit
        nodes.append(subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True))
    return nodes


def wait_all(nodes: list[subprocess.Popen], logs: Path, timeout: float) -> list[int]:
    try:
        return [p.wait(timeout=max(1.0, timeout)) for p in nodes]
    except subprocess.TimeoutExpired:
        for p in nodes:
            _kill_agent_and_ranks(p.pid)
        pytest.fail("the nodes did not finish in time:\n" + _logs(logs))


def _kill_agent_and_ranks(agent: int) -> None:
    """SIGKILL a torchrun agent and its ranks, which torchrun starts in sessions of their own (so killing
    the agent's process group would leave them running)."""
    try:
        children = Path(f"/proc/{agent}/task/{agent}/children").read_text().split()
    except OSError:  # gone already, or not Linux
        children = []
    for pid in [agent, *map(int, children)]:
        try:
            os.killpg(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass


def _logs(logs: Path) -> str:
    return "\n".join(f"--- {f.name}\n{f.read_text()[-3000:]}" for f in sorted(logs.glob("*.log")))


def checkpoint_step(folder: Path) -> int:
    try:
        return int(torch.load(folder / CHECKPOINT, map_location="cpu", weights_only=True)["step"])
    except (FileNotFoundError, RuntimeError, EOFError):  # not written yet
        return 0


@pytest.mark.slow
def test_two_nodes_train_in_sync_and_resume_after_sigterm(run_config, tmp_path):
    out = Path(json.loads(run_config.read_text())["output"])
    logs = tmp_path / "logs"
    logs.mkdir()

    nodes = launch_nodes(run_config, _free_port(), logs)
    deadline = time.monotonic() + 120
    while checkpoint_step(out) < 1:
        if any(p.poll() is not None for p in nodes) or time.monotonic() > deadline:
            wait_all(nodes, logs, 1)
            pytest.fail("the run ended or stalled before its first checkpoint:\n" + _logs(logs))
        time.sleep(0.2)
    for p in nodes:  # what a scheduler does at the end of a job's time: SIGTERM to everything
        os.killpg(p.pid, signal.SIGTERM)
    wait_all(nodes, logs, 300)
    stopped = load_checkpoint(out)
    assert 1 <= stopped["step"] < STEPS, _logs(logs)
    assert len(stopped["rank_digests"]) == 2 and len(set(stopped["rank_digests"])) == 1, stopped["rank_digests"]
    assert [h["step"] for h in stopped["history"]] == list(range(1, stopped["step"] + 1))

    final_steps = stopped["step"] + 1
    nodes = launch_nodes(run_config, _free_port(), logs, "--resume", "--steps", str(final_steps))
    assert wait_all(nodes, logs, 120) == [0, 0], _logs(logs)
    final = load_checkpoint(out)
    assert final["step"] == final_steps
    assert [h["step"] for h in final["history"]] == list(range(1, final_steps + 1))
    assert final["history"][: stopped["step"]] == stopped["history"]
    # Every rank ended with the weights rank 0 saved.
    assert final["rank_digests"] == [state_digest(final["model"])] * 2
    assert state_digest(final["model"]) != state_digest(stopped["model"]), "the resumed run did not train"
    assert (out / "nodes-1.0.1").is_dir(), _logs(logs)  # rank 0 wrote the package
    # Rank 0's TensorBoard curve: the stopped run's steps, then the resumed run's, each once.
    losses = tensorboard_scalars(out / "tensorboard")["train/loss"]
    assert [step for step, _ in losses] == list(range(1, final_steps + 1))
