"""Helpers for data tests: small generated inputs and an ingest that returns the version ref."""

from __future__ import annotations

import csv
import random
from pathlib import Path

import pytest

from fmstack.data.ingest import IngestSpec, ingest
from fmstack.hub import Hub

WORDS = [
    "card",
    "payment",
    "transfer",
    "money",
    "account",
    "balance",
    "refund",
    "help",
    "please",
    "my",
    "the",
    "is",
    "not",
    "working",
    "why",
]


def write_csv(path: Path, rows: list[tuple[str, str]], header: tuple[str, str] = ("text", "label")) -> Path:
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def synthetic_rows(n: int, seed: int = 0) -> list[tuple[str, str]]:
    """Rows with exact duplicates (upper-cased copies), near duplicates (one word added) and PII."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        text = " ".join(rng.choice(WORDS) for _ in range(12)) + f" ticket{i}"
        if i % 10 == 0:
            text += f" mail user{i}@example.com"
        rows.append((text, rng.choice("abc")))
        if i % 5 == 0:
            rows.append((text.upper() + "  ", "a"))
        if i % 11 == 0:
            rows.append((text + " thanks", "b"))
    return rows


@pytest.fixture
def raw_ref(hub: Hub, tmp_path: Path) -> str:
    """A 600-row labelled dataset in 4 shards, stored as acme/raw."""
    path = write_csv(tmp_path / "data.csv", synthetic_rows(500))
    return ingest(hub, IngestSpec(name="acme/raw", paths=[str(path)], shard_rows=200)).published.version.ref
