"""Fixtures shared by every test package: an isolated FMSTACK_HOME and a Hub on it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from fmstack.hub import Hub
from fmstack.settings import Settings


@pytest.fixture
def fmstack_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh FMSTACK_HOME for code (and CLI runs) that read settings from the environment."""
    home = tmp_path / "fmstack-home"
    monkeypatch.setenv("FMSTACK_HOME", str(home))
    monkeypatch.delenv("FMSTACK_DATABASE_URL", raising=False)
    monkeypatch.delenv("FMSTACK_STORE_URL", raising=False)
    return home


@pytest.fixture
def hub(fmstack_home: Path) -> Iterator[Hub]:
    """A Hub on SQLite + local blobs in a fresh home (the same one the CLI sees in this test)."""
    with Hub(Settings.from_env()) as h:
        yield h
