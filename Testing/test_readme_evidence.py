"""The README's "what the default model segments" list is the one its package's evidence gives."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from mome.hub import resolve_model
from mome.package import read_package_json


@pytest.fixture(autouse=True)
def no_installed_models(tmp_path, monkeypatch):
    """The default model is then the bundled one, whatever this machine has installed or activated."""
    monkeypatch.setenv("MOME_HOME", str(tmp_path))
from mome.package.evidence import summary_markdown

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_agrees_with_the_bundled_package():
    block = re.search(r"<!-- model-evidence:[^\n]*-->\n(.*?)\n<!-- /model-evidence -->", README.read_text(), re.S)
    assert block, "README.md lost its <!-- model-evidence --> block"
    expected = summary_markdown(read_package_json(resolve_model(None)))
    assert block.group(1) == expected, (
        "README.md disagrees with the default model's evidence; regenerate the block with "
        "`mome models evidence mome-mini --markdown`"
    )


def test_readme_prompts_use_only_structures_the_default_model_segments():
    from mome.inference.reliability import assess
    from mome.vocabulary import load_vocabulary, parse_prompts

    meta = read_package_json(resolve_model(None))
    text = README.read_text()
    prompts = re.findall(r'--prompts "([^"]+)"', text)
    assert prompts, "no example prompts found in README.md"
    for prompt in prompts:
        statuses = {r.name: r.status for r in assess(parse_prompts(prompt, load_vocabulary()).classes, meta)}
        refused = {name: s for name, s in statuses.items() if s in ("zero_shot", "not_learned")}
        assert not refused, f"README example {prompt!r} asks for {refused}"
