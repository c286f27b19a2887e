"""Fixtures for the interop table: tiny versions trained by fmstack, and a copy of a version's files
outside the hub (what ``fmstack hub pull`` gives a user)."""

from __future__ import annotations

from pathlib import Path

import pytest

from fmstack.hub import Hub
from tests.train.conftest import push_classification, push_tiny_bert


@pytest.fixture(autouse=True)
def offline(monkeypatch: pytest.MonkeyPatch) -> None:
    """The standard loaders must find everything in the pulled folders: no Hugging Face Hub calls."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")


@pytest.fixture
def tiny_bert(hub: Hub, tmp_path: Path) -> str:
    return push_tiny_bert(hub, tmp_path)


@pytest.fixture
def topics(hub: Hub, tmp_path: Path) -> str:
    return push_classification(hub, tmp_path)


def pulled(hub: Hub, ref: str, root: Path) -> Path:
    """The version's files as ``fmstack hub pull`` writes them for a user."""
    target = root / "pulled" / ref.replace("/", "_").replace(":", "_")
    hub.pull(ref, target)
    return target
