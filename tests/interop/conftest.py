"""Fixtures for the interop table: one hub per module holding the tiny base, the data and every version the
rows train (each distinct training once), and a copy of a version's files outside the hub (what
``fmstack hub pull`` gives a user).

The rows compare loaders on versions, not trainings: training the same spec again for each row would only
repeat work (a training is the slow part of a row), so rows that need the same version share it. A row
that changes something pushes it as a new version of its own repo; the shared versions stay as trained.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from fmstack.hub import Hub
from fmstack.settings import Settings
from tests.train.conftest import push_classification, push_tiny_bert


@pytest.fixture(autouse=True)
def offline(monkeypatch: pytest.MonkeyPatch) -> None:
    """The standard loaders must find everything in the pulled folders: no Hugging Face Hub calls."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")


class Trained:
    """The module's hub, its tiny base and data, and ``train(**fields)``: a classification version
    trained from them once per distinct set of fields (4 steps, fixed seed)."""

    def __init__(self, hub: Hub, root: Path) -> None:
        self.hub = hub
        self.base = push_tiny_bert(hub, root)
        self.data = push_classification(hub, root)
        self._refs: dict[str, str] = {}

    def train(self, **fields: Any) -> str:
        from fmstack.train.run import train
        from fmstack.train.spec import parse_spec

        key = json.dumps(fields, sort_keys=True)
        if key not in self._refs:
            spec = {"task": "classification", "base": self.base, "data": self.data, "max_steps": 4}
            spec |= {"lr": 1e-2, "seed": 3, **fields}
            self._refs[key] = train(self.hub, parse_spec(spec)).output.ref
        return self._refs[key]


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Trained]:
    root = tmp_path_factory.mktemp("interop")
    with Hub(Settings.at(root / "fmstack-home")) as hub:
        yield Trained(hub, root / "files")


@pytest.fixture
def hub(trained: Trained, monkeypatch: pytest.MonkeyPatch) -> Hub:
    """The module's hub (also FMSTACK_HOME, as the root conftest's hub is, for code that reads it)."""
    monkeypatch.setenv("FMSTACK_HOME", str(trained.hub.settings.home))
    monkeypatch.delenv("FMSTACK_DATABASE_URL", raising=False)
    monkeypatch.delenv("FMSTACK_STORE_URL", raising=False)
    return trained.hub


@pytest.fixture
def tiny_bert(trained: Trained) -> str:
    return trained.base


@pytest.fixture
def topics(trained: Trained) -> str:
    return trained.data


def pulled(hub: Hub, ref: str, root: Path) -> Path:
    """The version's files as ``fmstack hub pull`` writes them for a user."""
    target = root / "pulled" / ref.replace("/", "_").replace(":", "_")
    hub.pull(ref, target)
    return target
