"""What the dataset version page shows: splits and row counts, label counts, a text-length histogram,
the first rows and the rejected rows with their reasons.

Read from a verified checkout of the version (``Hub.checkout``, cached by digest) with the data
package's own readers (``data.format``), streaming shard by shard. Versions are immutable, so a view
is computed once per digest and kept (a few, least recently used first out). Label counts and the
histogram stop after ``SCAN_ROWS`` rows of a split, and the page says so: one request never reads a
dataset of any size whole.
"""

from __future__ import annotations

import itertools
import threading
from collections import Counter, OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from fmstack.data.format import SPLIT_ORDER, iter_batches, read_manifest
from fmstack.data.stats import Histogram
from fmstack.hub import Hub

SCAN_ROWS = 200_000  # rows per split read for label counts and lengths
FIRST_ROWS = 20
REJECTED_ROWS = 50
BINS = 30
CELL_CHARS = 300  # longer cells are clipped on the page
CACHED = 16


@dataclass
class DatasetView:
    splits: list[tuple[str, int]]  # (split, rows), in SPLIT_ORDER
    columns: list[str]
    labels: list[tuple[str, int]]  # most frequent first, over the scanned rows of every usable split
    edges: list[float]  # histogram bin edges, characters
    counts: list[int]
    scanned: int  # rows read for labels and lengths
    truncated: bool  # some split had more than SCAN_ROWS rows
    first_split: str | None
    first_rows: list[dict[str, str]] = field(default_factory=list)
    rejected: list[dict[str, str]] = field(default_factory=list)
    reasons: list[tuple[str, int]] = field(default_factory=list)


class DatasetViews:
    """The per-digest cache of views; safe to share between request threads."""

    def __init__(self) -> None:
        self._views: OrderedDict[str, DatasetView] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, hub: Hub, ref: str, digest: str) -> DatasetView:
        with self._lock:
            if digest in self._views:
                self._views.move_to_end(digest)
                return self._views[digest]
        view = build(hub.checkout(ref))
        with self._lock:
            self._views[digest] = view
            while len(self._views) > CACHED:
                self._views.popitem(last=False)
        return view


def build(folder: Path) -> DatasetView:
    manifest = read_manifest(folder)
    names = sorted(manifest.splits, key=lambda s: (SPLIT_ORDER.index(s) if s in SPLIT_ORDER else 99, s))
    usable = [s for s in names if s != "rejected"]
    labels, lengths = Counter[str](), Histogram()
    scanned, truncated = 0, False
    for split in usable:
        seen = 0
        for batch in iter_batches(folder, split, batch_size=8192):
            table = pa.Table.from_batches([batch.slice(0, SCAN_ROWS - seen)])
            seen += table.num_rows
            if "text" in table.column_names:
                lengths.add(pc.utf8_length(table.column("text")).to_numpy(zero_copy_only=False))
            if "label" in table.column_names:
                labels.update(str(v) for v in table.column("label").to_pylist())
            if seen >= SCAN_ROWS:
                truncated = truncated or manifest.splits[split].rows > SCAN_ROWS
                break
        scanned += seen
    edges, counts = _bins(lengths.counts)
    first = usable[0] if usable else None
    view = DatasetView(
        splits=[(s, manifest.splits[s].rows) for s in names],
        columns=list(manifest.columns),
        labels=sorted(labels.items(), key=lambda kv: (-kv[1], kv[0])),
        edges=edges,
        counts=counts,
        scanned=scanned,
        truncated=truncated,
        first_split=first,
    )
    if first is not None:
        view.first_rows = _head(folder, first, FIRST_ROWS)
    if "rejected" in manifest.splits:
        view.rejected = _head(folder, "rejected", REJECTED_ROWS)
        view.reasons = _reasons(folder)
    return view


def _bins(by_length: np.ndarray) -> tuple[list[float], list[int]]:
    """``BINS`` equal-width bins over the lengths seen (``by_length[n]`` rows of length ``n``)."""
    if by_length.sum() == 0:
        return [], []
    present = np.nonzero(by_length)[0]
    low, high = int(present[0]), int(present[-1]) + 1
    width = max(1, -(-(high - low) // BINS))  # ceiling division: whole characters per bin
    edges = list(range(low, high + width, width))
    counts = [int(by_length[a:b].sum()) for a, b in itertools.pairwise(edges)]
    return [float(e) for e in edges[: len(counts) + 1]], counts


def _reasons(folder: Path) -> list[tuple[str, int]]:
    counts, seen = Counter[str](), 0
    for batch in iter_batches(folder, "rejected"):
        if "reason" in batch.schema.names:
            counts.update(str(v) for v in batch.column("reason").to_pylist())
        seen += batch.num_rows
        if seen >= SCAN_ROWS:
            break
    return counts.most_common()


def _head(folder: Path, split: str, n: int) -> list[dict[str, str]]:
    rows: list[dict[str, str]] = []
    for batch in iter_batches(folder, split, batch_size=min(max(n, 1), 8192)):
        for row in batch.slice(0, n - len(rows)).to_pylist():
            rows.append({k: _cell(v) for k, v in row.items()})
        if len(rows) >= n:
            break
    return rows


def _cell(value: Any) -> str:
    text = "" if value is None else str(value)
    return text if len(text) <= CELL_CHARS else text[: CELL_CHARS - 1] + "…"
