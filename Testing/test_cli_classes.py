"""``mome classes``: legend first, every line within 100 columns, each structure's status from the package."""

from __future__ import annotations

import json

import pytest

from mome.cli.main import main
from mome.hub import resolve_model
from mome.package import class_statuses, read_package_json


@pytest.fixture(autouse=True)
def no_installed_models(tmp_path, monkeypatch):
    """The default model is then the bundled one, whatever this machine has installed or activated."""
    monkeypatch.setenv("MOME_HOME", str(tmp_path))


def test_table_fits_100_columns_with_the_legend_first(capsys):
    assert main(["classes"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert max(len(line) for line in lines) <= 100
    legend = next(i for i, line in enumerate(lines) if line.startswith("Status of each structure"))
    header = next(i for i, line in enumerate(lines) if line.startswith("key "))
    assert legend < header
    for word in ("validated", "weak", "not validated", "not learned", "zero-shot"):
        assert any(line.strip().startswith(word) for line in lines[legend:header]), word


def test_status_per_structure_agrees_with_the_bundled_package(capsys):
    meta = read_package_json(resolve_model(None))
    statuses = class_statuses(meta)
    assert main(["classes", "--json"]) == 0
    rows = {row["key"]: row for row in json.loads(capsys.readouterr().out)}
    for key, status in statuses.items():
        assert rows[key]["status"] == status.status and rows[key]["trained"], key
        assert rows[key]["evidence"] == status.reason
    untrained = [row for key, row in rows.items() if key not in statuses]
    assert untrained and all(row["status"] == "zero_shot" and not row["trained"] for row in untrained)
    assert main(["classes"]) == 0
    table = capsys.readouterr().out
    liver = next(line for line in table.splitlines() if line.startswith("liver "))
    assert liver.split()[-1] == statuses["liver"].label.split()[-1]
