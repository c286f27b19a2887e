"""A hub with a tiny BERT and a tiny 3-topic classification dataset (nothing downloaded)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from fmstack.hub import Hub
from fmstack.settings import Settings
from tests.tiny import LABELS
from tests.train.conftest import classification_table, push_dataset, push_tiny_bert


@pytest.fixture(scope="module")
def tiny_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, str, str]]:
    """(FMSTACK_HOME, base ref, dataset ref) shared by a test module."""
    home = tmp_path_factory.mktemp("fed-home")
    with Hub(Settings.at(home)) as hub:
        base = push_tiny_bert(hub, home / "src")
        data = push_dataset(
            hub,
            home / "src",
            "test/topics",
            {"train": classification_table(96, 1), "validation": classification_table(30, 2)},
            labels=sorted(LABELS),
        )
    yield home, base, data
