"""recipes/paper: the config loads and validates, the manifest combines the ten presets, and every
command in its README parses with the options `mome` and `torchrun` have (no invented flags)."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
import yaml

from mome.cli.main import build_parser
from mome.data.presets import PRESETS
from mome.model import MoMEConfig
from mome.training.config import TrainConfig

RECIPE = Path(__file__).resolve().parents[1] / "recipes" / "paper"


def readme_commands() -> list[list[str]]:
    """The command lines of the README's code blocks (`mome …` and `torchrun …`), split as a shell would."""
    blocks = re.findall(r"```\n(.*?)```", (RECIPE / "README.md").read_text(), re.S)
    lines = [line.strip() for block in blocks for line in block.splitlines()]
    return [shlex.split(line, comments=True) for line in lines if line.startswith(("mome ", "torchrun "))]


def test_config_is_the_paper_setup():
    cfg = TrainConfig.load(RECIPE / "config.yaml")
    assert cfg.model.size == "paper" and MoMEConfig.from_size("paper").feature_size == 48
    assert cfg.model.variant == "mome" and cfg.model.text_encoder == "clip"
    assert cfg.data.spacing == (1.5, 1.5, 1.5) and cfg.data.patch_size == (96, 96, 96)
    assert cfg.data.hu_window == (-175.0, 250.0)
    assert cfg.optim.amp == "bf16" and cfg.optim.lr == 1e-4 and cfg.optim.weight_decay == 1e-5
    assert 0 < cfg.optim.warmup_steps < cfg.optim.steps
    assert cfg.tensorboard is True and cfg.data.num_workers > 0
    # Paths in the config are relative to it.
    assert Path(cfg.data.manifest) == RECIPE / "manifest.yaml"
    assert Path(cfg.model.text_encoder_weights).parent == RECIPE / "weights"


def test_manifest_includes_the_ten_datasets_each_written_by_an_import_command():
    entries = yaml.safe_load((RECIPE / "manifest.yaml").read_text())["datasets"]
    included = [Path(e["include"]).stem for e in entries]
    assert sorted(included) == sorted(PRESETS) and len(included) == 10
    assert all(e["weight"] > 0 for e in entries)
    imports = {c[c.index("-o") + 1]: c for c in readme_commands() if c[1:3] == ["data", "import"]}
    assert sorted(Path(o).stem for o in imports) == sorted(included)
    for output, command in imports.items():  # each file is written where manifest.yaml includes it
        assert Path(output).parent == Path("recipes/paper/data")
        preset = command[command.index("--preset") + 1] if "--preset" in command else command[3]
        assert preset == Path(output).stem


def test_readme_commands_use_only_real_options():
    from torch.distributed.run import get_args_parser

    commands = readme_commands()
    kinds = {c[0] for c in commands}
    assert kinds == {"mome", "torchrun"}
    for command in commands:
        if command[0] == "torchrun":
            launcher = get_args_parser().parse_args(command[1:])
            assert launcher.module and launcher.training_script == "mome.cli.main", command
            mome_args = launcher.training_script_args
        else:
            mome_args = command[1:]
        try:
            build_parser().parse_args(mome_args)
        except SystemExit:
            pytest.fail(f"`mome` rejects this README command: {shlex.join(command)}")
    multi_node = [c for c in commands if c[0] == "torchrun" and "--nnodes" in c]
    assert multi_node and all({"--rdzv_backend", "--rdzv_endpoint"} <= set(c) for c in multi_node)
    assert any("--resume" in c for c in multi_node)
