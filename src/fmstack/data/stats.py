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

from fmstack.data.format import read_manifest

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


def _percentiles(chunks: list[np.ndarray]) -> dict[str, int]:
    values = np.concatenate(chunks) if chunks else np.zeros(0, dtype=np.int64)
    if values.size == 0:
        return {}
    points = np.percentile(values, PERCENTILES, method="lower")
    return {f"p{p}": int(v) for p, v in zip(PERCENTILES, points, strict=True)}


def _split_stats(folder: Path, shards: list[str], rejected: bool) -> SplitStats:
    stats, labels, reasons = SplitStats(), Counter[str](), Counter[str]()
    chars: list[np.ndarray] = []
    tokens: list[np.ndarray] = []
    for shard in shards:
        file = pq.ParquetFile(folder / shard)
        names = set(file.schema_arrow.names)
        wanted = [c for c in ("text", "label", "input_ids", "reason") if c in names]
        for batch in file.iter_batches(batch_size=65536, columns=wanted):
            stats.rows += batch.num_rows
            table = pa.Table.from_batches([batch])
            if rejected:
                reasons.update(table.column("reason").to_pylist())
                continue
            if "text" in names:
                chars.append(pc.utf8_length(table.column("text")).to_numpy(zero_copy_only=False))
            if "label" in names:
                counts = pc.value_counts(table.column("label").combine_chunks())
                labels.update({str(c["values"]): int(c["counts"]) for c in counts.to_pylist()})
            if "input_ids" in names:
                tokens.append(pc.list_value_length(table.column("input_ids")).to_numpy(zero_copy_only=False))
    stats.labels = dict(sorted(labels.items(), key=lambda kv: (-kv[1], kv[0])))
    stats.reasons = dict(sorted(reasons.items()))
    stats.text_chars = _percentiles(chars)
    stats.tokens = _percentiles(tokens)
    return stats


def measure(folder: Path) -> DatasetStats:
    manifest = read_manifest(folder)
    schema: dict[str, str] = {}
    for name, info in manifest.splits.items():
        if info.shards and name != "rejected" and not schema:
            schema = {f.name: str(f.type) for f in pq.read_schema(folder / info.shards[0])}
    splits = {
        name: _split_stats(folder, info.shards, name == "rejected") for name, info in manifest.splits.items()
    }
    return DatasetStats(schema=schema, splits=splits)
