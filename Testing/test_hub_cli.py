"""``mome models``: every action through ``mome.cli.main.main``, with the store in a temporary
``MOME_HOME``, the registry in a temporary ``MOME_REGISTRY`` and downloads from a loopback server."""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import pytest

from hub_fixtures import build_package, registry_item, write_registry
from mome.cli.main import main
from mome.hub import ModelStore


@pytest.fixture(scope="module")
def packages(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("packages")
    return {"zip": build_package(root / "tiny-1.0.0.zip"), "0.9.0": build_package(root / "tiny-0.9.0", version="0.9.0")}


@pytest.fixture
def home(tmp_path, monkeypatch, server, packages) -> Path:
    """MOME_HOME and a registry offering tiny-test 1.0.0 from the loopback server; an empty Resources/."""
    data = packages["zip"].read_bytes()
    url = server.serve("tiny-test-1.0.0.zip", data)
    registry = write_registry(tmp_path / "Models.json", [registry_item("tiny-test", "1.0.0", url, data, license="MIT")])
    monkeypatch.setenv("MOME_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("MOME_REGISTRY", str(registry))
    (tmp_path / "Resources" / "Models").mkdir(parents=True)
    monkeypatch.setattr("mome.hub.resolve.resources_dir", lambda: tmp_path / "Resources")
    return tmp_path / "home"


class Terminal(io.StringIO):
    """stdin of an interactive terminal that answers ``answer``."""

    def isatty(self) -> bool:
        return True


def one_error_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    return lines[0]


def test_download_off_a_terminal_needs_yes_and_sends_nothing(home, server, capsys):
    assert main(["models", "download", "tiny-test"]) == 2
    line = one_error_line(capsys.readouterr().err)
    assert "--yes" in line and "consent" in line
    assert server.requests == []
    assert ModelStore().installed() == []


@pytest.mark.parametrize("answer, code", [("n\n", 2), ("y\n", 0)])
def test_download_asks_on_a_terminal(home, server, capsys, monkeypatch, answer, code):
    monkeypatch.setattr("sys.stdin", Terminal(answer))
    assert main(["models", "download", "tiny-test", "--progress", "none"]) == code
    err = capsys.readouterr().err
    assert "Download model tiny-test@1.0.0" in err and "[y/N]" in err
    assert len(server.requests) == (1 if code == 0 else 0)
    assert [m.spec for m in ModelStore().installed()] == (["tiny-test@1.0.0"] if code == 0 else [])


def test_download_with_yes_then_list(home, server, capsys):
    assert main(["models", "list"]) == 0
    out = capsys.readouterr().out
    assert "Available to download" in out and "tiny-test" in out and "MIT" in out
    assert main(["models", "download", "tiny-test@1.0.0", "--yes", "--activate", "--progress", "none"]) == 0
    assert "Installed tiny-test@1.0.0" in capsys.readouterr().out
    assert main(["models", "list"]) == 0
    out = capsys.readouterr().out
    assert any(line.split()[:3] == ["*", "tiny-test", "1.0.0"] for line in out.splitlines()), out
    assert "Available to download" not in out
    assert main(["models", "list", "--json"]) == 0
    listing = json.loads(capsys.readouterr().out)
    assert [(m["name"], m["active"], m["classes"]) for m in listing["installed"]] == [
        ("tiny-test", True, ["liver", "spleen"])]
    assert listing["registry"][0]["installed"] is True
    assert main(["models", "download", "nothing-such", "--yes"]) == 2
    assert "known models: tiny-test@1.0.0" in one_error_line(capsys.readouterr().err)


def test_import_activate_rollback_export_remove(home, packages, tmp_path, capsys):
    assert main(["models", "import", str(packages["0.9.0"]), "--activate"]) == 0
    assert main(["models", "import", str(packages["zip"])]) == 0
    assert "Imported tiny-test@1.0.0" in capsys.readouterr().out
    assert ModelStore().active().spec == "tiny-test@0.9.0"
    assert main(["models", "activate", "tiny-test@1.0.0"]) == 0
    assert "Active model: tiny-test@1.0.0 (was tiny-test@0.9.0)" in capsys.readouterr().out
    assert main(["models", "rollback"]) == 0
    assert "Active model: tiny-test@0.9.0" in capsys.readouterr().out

    assert main(["models", "remove", "tiny-test@0.9.0"]) == 2
    assert "active model" in one_error_line(capsys.readouterr().err)
    assert main(["models", "remove", "tiny-test"]) == 2
    assert "tiny-test@VERSION (installed: 0.9.0, 1.0.0)" in one_error_line(capsys.readouterr().err)

    out_zip = tmp_path / "shared" / "tiny.zip"
    assert main(["models", "export", "tiny-test@1.0.0", str(out_zip)]) == 0
    assert out_zip.is_file()
    assert main(["models", "export", "tiny-test@1.0.0", str(out_zip)]) == 2
    assert "already exists" in one_error_line(capsys.readouterr().err)
    assert main(["models", "remove", "tiny-test@1.0.0"]) == 0
    assert [m.spec for m in ModelStore().installed()] == ["tiny-test@0.9.0"]
    assert main(["models", "rollback"]) == 2  # 1.0.0 is gone, nothing earlier remains
    assert "no earlier active model" in one_error_line(capsys.readouterr().err)
    assert main(["models", "activate", "no-such-model"]) == 2
    assert "no-such-model" in one_error_line(capsys.readouterr().err)
    assert main(["models", "import", str(tmp_path / "missing.zip")]) == 2
    assert "does not exist" in one_error_line(capsys.readouterr().err)


def test_activating_a_bundled_model_copies_it_into_the_store(home, packages, tmp_path, capsys):
    shutil.copytree(packages["0.9.0"], tmp_path / "Resources" / "Models" / "tiny-test")
    assert main(["models", "activate", "tiny-test"]) == 0
    active = ModelStore().active()
    assert active.spec == "tiny-test@0.9.0" and active.path.is_relative_to(home)


def test_verify_names_the_bad_file(home, packages, capsys):
    assert main(["models", "import", str(packages["zip"])]) == 0
    assert main(["models", "verify", str(packages["zip"])]) == 0
    assert main(["models", "verify"]) == 0
    assert "OK   tiny-test@1.0.0: 2 files match" in capsys.readouterr().out
    weights = ModelStore().path("tiny-test", "1.0.0") / "weights.safetensors"
    weights.write_bytes(weights.read_bytes()[:-1] + b"\0")
    assert main(["models", "verify", "tiny-test"]) == 2
    captured = capsys.readouterr()
    assert "BAD  tiny-test" in captured.out and "weights.safetensors does not match" in captured.out
    assert "1 of 1 model(s) failed" in one_error_line(captured.err)
