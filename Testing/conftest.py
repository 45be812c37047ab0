"""Shared fixtures. Real CT data lives outside the repository (../shared/data); tests that need it
skip with the reason printed when it is absent."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def shared_data_dir() -> Path:
    env = os.environ.get("MOME_SHARED_DATA")
    return Path(env) if env else REPO.parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    path = shared_data_dir()
    if not (path / "README.md").is_file():
        pytest.skip(f"real CT sample data not found at {path} (set MOME_SHARED_DATA to its folder)")
    return path


@pytest.fixture(autouse=True, scope="session")
def _limit_threads():
    # CI has 2 cores; oversubscribing them makes every torch test slower.
    try:
        import torch

        torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))
    except ImportError:
        pass
    yield


@pytest.fixture
def server():
    """A loopback HTTP server (hub_fixtures.LoopbackServer) for download tests: nothing leaves the machine."""
    from hub_fixtures import LoopbackServer

    with LoopbackServer() as s:
        yield s
