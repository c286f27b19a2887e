"""What a dataset version holds, measured by streaming its shards: rows per split, label counts,
text and token length percentiles, schema. Feeds the card; reads only the columns it needs."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from fmstack.data.format import decode_labels, read_manifest

PERCENTILES = (0, 5, 25, 50, 75, 95, 100)


@dataclass
class SplitStats:
    rows: int = 0
    labels: dict[str, int] = field(default_factory=dict)
    text_chars: dict[str, int] = field(default_factory=dict)  # "p50" -> chars
    tokens: dict[str, int] = field(default_factory=dict)  # "p50" -> tokens, once tokenised
    reasons: dict[str, int] = field(default_factory=dict)  # rejected split only


@dataclass
class DatasetStats:
    schema: dict[str, str]
    splits: dict[str, SplitStats]


class Histogram:
    """Exact length percentiles in memory proportional to the longest row, not to the row count."""

    def __init__(self) -> None:
        self.counts = np.zeros(0, dtype=np.int64)

    def add(self, lengths: np.ndarray) -> None:
        new = np.bincount(lengths.astype(np.int64))
        if len(new) > len(self.counts):
            new[: len(self.counts)] += self.counts
            self.counts = new
        else:
            self.counts[: len(new)] += new

    def percentiles(self) -> dict[str, int]:
        total = int(self.counts.sum())
        if total == 0:
            return {}
        cumulative = np.cumsum(self.counts)
        # numpy's "lower" method: the value at rank floor(p/100 * (n-1)) of the sorted lengths
        ranks = [int(np.floor(p / 100 * (total - 1))) for p in PERCENTILES]
        values = np.searchsorted(cumulative, np.array(ranks) + 1)
        return {f"p{p}": int(v) for p, v in zip(PERCENTILES, values, strict=True)}


def _split_stats(folder: Path, shards: list[str], rejected: bool) -> SplitStats:
    stats, labels, reasons = SplitStats(), Counter[str](), Counter[str]()
    chars, tokens = Histogram(), Histogram()
    for shard in shards:
        file = pq.ParquetFile(folder / shard)
        names = set(file.schema_arrow.names)
        wanted = [c for c in ("text", "label", "input_ids", "reason") if c in names]
        for batch in file.iter_batches(batch_size=65536, columns=wanted):
            stats.rows += batch.num_rows
            table = decode_labels(
                pa.Table.from_batches([batch]).replace_schema_metadata(file.schema_arrow.metadata)
            )
            if rejected:
                reasons.update(table.column("reason").to_pylist())
                continue
            if "text" in names:
                chars.add(pc.utf8_length(table.column("text")).to_numpy(zero_copy_only=False))
            if "label" in names:
                counts = pc.value_counts(table.column("label").combine_chunks())
                labels.update({str(c["values"]): int(c["counts"]) for c in counts.to_pylist()})
            if "input_ids" in names:
                tokens.add(pc.list_value_length(table.column("input_ids")).to_numpy(zero_copy_only=False))
    stats.labels = dict(sorted(labels.items(), key=lambda kv: (-kv[1], kv[0])))
    stats.reasons = dict(sorted(reasons.items()))
    stats.text_chars = chars.percentiles()
    stats.tokens = tokens.percentiles()
    return stats


def measure(folder: Path) -> DatasetStats:
    manifest = read_manifest(folder)
    schema: dict[str, str] = {}
    for name, info in manifest.splits.items():
        if info.shards and name != "rejected" and not schema:
            stored = decode_labels(pq.read_schema(folder / info.shards[0]).empty_table())
            schema = {f.name: str(f.type) for f in stored.schema}
    splits = {
        name: _split_stats(folder, info.shards, name == "rejected") for name, info in manifest.splits.items()
    }
    return DatasetStats(schema=schema, splits=splits)
