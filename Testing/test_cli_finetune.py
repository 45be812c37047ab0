"""``mome finetune``: the weights it trains change, the frozen ones do not, and the result is installed."""

from __future__ import annotations

import torch

from mome.cli.finetune import _next_version
from mome.cli.main import main
from mome.hub import ModelStore
from mome.model import MoME
from mome.package import ModelPackage
from mome.training.finetune import apply_freeze
from test_training_run import base_package
from training_fixtures import phantom_manifest


def test_finetune_changes_what_it_trains_and_lists_the_result(tmp_path, monkeypatch, capsys):
    # Issue 15: `--preset backbone --steps 3` once wrote a package equal to its base (0 of 183 tensors
    # differed): validation ran after every step and "keep best" chose step 1, whose warm-up rate was 0.
    monkeypatch.setenv("MOME_HOME", str(tmp_path / "home"))
    base = base_package(tmp_path)
    manifest = phantom_manifest(tmp_path / "data", n_train=1, n_val=1)
    argv = ["finetune", "--model", str(base), "--data", str(manifest), "--preset", "backbone", "--steps", "3",
            "--device", "cpu", "--output", str(tmp_path / "run"), "--progress", "none"]
    assert main(argv) == 0

    [installed] = ModelStore().installed()
    assert installed.spec == "base-ft@1.1.0" and not installed.active
    before = ModelPackage.load(base)
    after = ModelPackage.load(installed.path)
    model = MoME(before.config)
    apply_freeze(model, "backbone")
    trained = {name for name, p in model.named_parameters() if p.requires_grad}
    changed = {k for k in before.state_dict if not torch.equal(before.state_dict[k].float(), after.state_dict[k].float())}
    assert changed <= trained, f"frozen tensors changed: {sorted(changed - trained)[:5]}"
    assert len(changed) == len(trained), f"{len(trained) - len(changed)} trained tensors did not change"
    assert after.info.provenance["changed_tensors"] == {"changed": len(trained), "trained": len(trained)}

    capsys.readouterr()
    assert main(["models", "list"]) == 0
    assert "base-ft" in capsys.readouterr().out
    # A second run would get the next free version instead of colliding with the installed one.
    assert _next_version("1.0.0", "base-ft", tmp_path / "run", ModelStore()) == "1.2.0"
