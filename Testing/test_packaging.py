"""Packaging of the engine: what the wheel holds, and that a *normal* (non-editable) install works.

An editable install and a source checkout find ``Resources/`` next to the ``mome`` package, so they
hide packaging mistakes; only a built wheel shows what a user of ``pip install .`` gets. The
wheel test builds it, unpacks it (a wheel is a zip laid out as site-packages) and runs the engine
from there in a fresh interpreter, away from the checkout.
"""

from __future__ import annotations

import ast
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())


def test_every_mome_subpackage_is_listed_in_pyproject():
    listed = set(PYPROJECT["tool"]["setuptools"]["packages"])
    found = {
        ".".join(p.parent.relative_to(REPO).parts)
        for p in (REPO / "mome").rglob("__init__.py")
        if "__pycache__" not in p.parts
    }
    assert found - listed == set(), f"add these to [tool.setuptools] packages: {sorted(found - listed)}"


def test_no_engine_module_shadows_a_package_mapped_onto_a_folder():
    """``mome/resources.py`` once hid the ``mome.resources`` package (``Resources/``) of the wheel."""
    mapped = {name for name in PYPROJECT["tool"]["setuptools"]["package-dir"] if name != "mome"}
    modules = {".".join(p.with_suffix("").relative_to(REPO).parts) for p in (REPO / "mome").rglob("*.py")}
    assert not mapped & modules, f"these modules shadow mapped packages in an installed wheel: {mapped & modules}"


def test_engine_never_imports_slicer_or_qt():
    offenders = []
    for path in (REPO / "mome").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            offenders += [f"{path.relative_to(REPO)}: {n}" for n in names
                          if n.split(".")[0] in {"slicer", "qt", "ctk", "PythonQt", "vtk", "PySide6", "PyQt5"}]
    assert offenders == []


def test_the_shipped_samples_match_their_checksums_and_carry_their_licence():
    folder = REPO / "Resources" / "Samples"
    entries = json.loads((folder / "samples.json").read_text())["samples"]
    assert entries
    for entry in entries:
        assert entry["license"] and entry["source"]
        if "remote" in entry:  # downloaded on request, never shipped: Testing/test_samples.py checks it
            assert "file" not in entry
            continue
        data = (folder / entry["file"]).read_bytes()
        assert hashlib.sha256(data).hexdigest() == entry["sha256"], entry["file"]
        assert (folder / entry["license_file"]).is_file()


@pytest.fixture(scope="module")
def installed_wheel(tmp_path_factory) -> Path:
    """The wheel, built by pip as a user's ``pip install .`` builds it, unpacked as site-packages.

    Built from a copy of the files a source distribution holds: setuptools reuses a ``build/`` folder
    left in a working tree, which could hide (or fake) a packaging mistake."""
    out = tmp_path_factory.mktemp("wheel")
    source = out / "source"
    source.mkdir()
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy2(REPO / name, source / name)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    shutil.copytree(REPO / "mome", source / "mome", ignore=ignore)
    shutil.copytree(REPO / "Resources", source / "Resources", ignore=ignore)
    build = subprocess.run([sys.executable, "-m", "pip", "wheel", str(source), "--no-deps", "-q", "-w", str(out)],
                           capture_output=True, text=True, timeout=600)
    assert build.returncode == 0, build.stdout + build.stderr
    (wheel,) = out.glob("mome_seg-*.whl")
    site = out / "site-packages"
    with zipfile.ZipFile(wheel) as archive:
        archive.extractall(site)
    return site


@pytest.mark.slow
def test_wheel_holds_every_resource_the_engine_reads(installed_wheel):
    resources = installed_wheel / "mome" / "resources"
    expected = [p.relative_to(REPO / "Resources") for p in (REPO / "Resources").rglob("*") if p.is_file()]
    missing = [str(p) for p in expected if not (resources / p).is_file()]
    assert expected and not missing, f"not in the wheel (add to [tool.setuptools.package-data]): {missing}"


@pytest.mark.slow
def test_the_installed_wheel_loads_its_vocabulary_models_and_samples(installed_wheel, tmp_path):
    """In a fresh interpreter that sees the unpacked wheel first (not the checkout or an editable
    install): the vocabulary, ``importlib.resources`` on ``mome.resources``, the bundled model and
    ``mome sample``, all from inside the installed package."""
    script = """
import importlib.resources, json, sys
from pathlib import Path
import mome
from mome.vocabulary import load_vocabulary
from mome.hub import resolve_model
from mome.cli.main import main
files = importlib.resources.files("mome.resources")
print(json.dumps({
    "mome": mome.__file__,
    "vocabulary": len(load_vocabulary()),
    "term_json": files.joinpath("Vocabulary").joinpath("MoME.term.json").is_file(),
    "model": str(resolve_model("mome-mini")),
}))
sys.exit(main(["sample", "example_ct"]))
"""
    env = {**os.environ, "PYTHONPATH": str(installed_wheel), "MOME_HOME": str(tmp_path / "home")}
    run = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True,
                         timeout=300)
    assert run.returncode == 0, run.stdout + run.stderr
    facts_line, sample_line = run.stdout.strip().splitlines()[-2:]
    facts = json.loads(facts_line)
    assert Path(facts["mome"]).is_relative_to(installed_wheel), facts["mome"]
    assert facts["vocabulary"] > 100 and facts["term_json"]
    assert Path(facts["model"]).is_relative_to(installed_wheel / "mome" / "resources")
    assert Path(sample_line) == installed_wheel / "mome" / "resources" / "Samples" / "example_ct.nii.gz"
