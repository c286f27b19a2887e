"""``dedup_exact``: drop rows whose (normalised) text, and pair, already occurred.

Global across shards and splits: each shard hashes its rows to 64-bit keys in parallel; one pass on
the driver over all keys, in shard order, keeps each key's first occurrence (8 bytes per row in
memory). Splits are ordered train, validation, test, so a test row that repeats a train row goes.
Hashes are pandas' SipHash-based ``hash_array`` with its fixed key: vectorised and identical in
every process and run (Python's ``hash`` is salted per process). A 64-bit collision between two
different texts is possible but negligible below billions of rows (about n^2 / 2^65).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar, Literal

import numpy as np
import pandas as pd  # type: ignore[import-untyped]
import pyarrow as pa
import pyarrow.compute as pc

from fmstack.data.ops.base import Context, OpConfig, Stats, keep, text_columns


class DedupExactConfig(OpConfig):
    op: Literal["dedup_exact"] = "dedup_exact"
    kind: ClassVar[Literal["row", "global", "final"]] = "global"
    normalize: bool = True  # compare case-folded text with collapsed whitespace

    def build(self) -> DedupExact:
        return DedupExact(self)


def text_keys(table: pa.Table, normalize: bool) -> np.ndarray:
    """uint64 per row over text (and text_pair, after a separator that cannot occur in text)."""
    parts = []
    for name in text_columns(table):
        values = table.column(name)
        if normalize:
            values = pc.utf8_lower(
                pc.utf8_trim_whitespace(pc.replace_substring_regex(values, r"[\s\p{Z}]+", " "))
            )
        parts.append(values)
    joined = parts[0] if len(parts) == 1 else pc.binary_join_element_wise(parts[0], parts[1], "\x00")
    array = np.asarray(joined.to_numpy(zero_copy_only=False), dtype=object)
    hashed: np.ndarray = pd.util.hash_array(array, categorize=False).astype(np.uint64)
    return hashed


def first_occurrences(keys: Sequence[np.ndarray]) -> list[np.ndarray]:
    """Per shard, True where the row's key did not occur earlier in shard order."""
    sizes = [len(k) for k in keys]
    every = np.concatenate(keys) if keys else np.zeros(0, np.uint64)
    first = np.zeros(len(every), dtype=bool)
    first[np.unique(every, return_index=True)[1]] = True
    return np.split(first, np.cumsum(sizes)[:-1]) if sizes else []


class DedupExact:
    def __init__(self, config: DedupExactConfig) -> None:
        self.config = config

    def keys(self, table: pa.Table, ctx: Context) -> dict[str, np.ndarray]:
        return {"hash": text_keys(table, self.config.normalize)}

    def decide(self, keys: Sequence[dict[str, np.ndarray]], ctx: Context) -> tuple[list[np.ndarray], Stats]:
        masks = first_occurrences([k["hash"] for k in keys])
        total = sum(len(m) for m in masks)
        return masks, {"duplicates_removed": total - int(sum(m.sum() for m in masks))}

    def apply(self, table: pa.Table, decision: np.ndarray, ctx: Context) -> tuple[pa.Table, Stats]:
        return keep(table, decision)
