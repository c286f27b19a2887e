"""``fmstack.data.readers``: long CSV cells are read without touching the process-wide csv limit."""

from __future__ import annotations

import csv
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from fmstack.data.columns import ColumnMap
from fmstack.data.readers import peek_columns, read
from fmstack.data.sources import Source

from .conftest import write_csv

SMALL_LIMIT = 1000  # characters: a cell longer than this fails any csv reader that keeps the limit


@pytest.fixture
def small_csv_limit() -> Iterator[None]:
    before = csv.field_size_limit(SMALL_LIMIT)
    yield
    csv.field_size_limit(before)


def _source(path: Path) -> Source:
    return Source(path, path.name, "csv", None, "train", "", path.stat().st_size)


def test_a_cell_over_the_csv_limit_is_read_and_the_limit_is_left_as_it_was(
    tmp_path: Path, small_csv_limit: None
) -> None:
    document = "word " * SMALL_LIMIT  # 5,000 characters in one cell
    path = write_csv(tmp_path / "long.csv", [(document, "a"), ("short", "b")])
    source = _source(path)
    assert peek_columns(source) == ["text", "label"]
    batches = list(read(source, ColumnMap("text", label="label")))
    assert [text for b in batches for text in b.values["text"]] == [document, "short"]
    assert not [r for b in batches for r in b.rejected]
    assert csv.field_size_limit() == SMALL_LIMIT
    with path.open(newline="") as f, pytest.raises(csv.Error, match="field larger than field limit"):
        list(csv.reader(f))  # everyone else's csv readers still have the limit they set


def test_importing_the_readers_leaves_the_csv_limit_alone() -> None:
    check = "import csv, fmstack.data.readers; print(csv.field_size_limit())"
    out = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True, check=True)
    assert int(out.stdout) == 128 * 1024  # Python's default
