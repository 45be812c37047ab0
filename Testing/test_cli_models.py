"""``mome models import`` of a damaged package: the error names the user's file, not a staging copy."""

from __future__ import annotations

import shutil
import zipfile

import pytest

from mome.cli.main import main
from stand_ins import random_package


@pytest.mark.parametrize("as_zip", [False, True])
def test_import_error_names_the_users_file(tmp_path, monkeypatch, capsys, as_zip):
    monkeypatch.setenv("MOME_HOME", str(tmp_path / "home"))
    folder = random_package().save(tmp_path / "my-model")
    with (folder / "weights.safetensors").open("ab") as handle:
        handle.write(b"tampered")
    source = folder
    if as_zip:
        source = tmp_path / "my-model.zip"
        with zipfile.ZipFile(source, "w") as zf:
            for file in folder.iterdir():
                zf.write(file, file.name)
        shutil.rmtree(folder)
    assert main(["models", "import", str(source)]) == 2
    err = capsys.readouterr().err
    assert f"model package {source}: weights.safetensors does not match" in err
    assert ".staging-" not in err and len(err.strip().splitlines()) == 1
