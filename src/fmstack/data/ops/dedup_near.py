"""``dedup_near``: drop rows whose text is a near duplicate (Jaccard over n-gram shingles) of an
earlier row, with MinHash LSH.

Global across shards: each shard computes its rows' MinHash signatures (datasketch, in parallel) and
stores them with one 64-bit hash per LSH band. The driver first folds rows whose band hashes are all
equal (identical signatures: exact and trivially close copies) onto the first of them, then, among the
rows left, takes every pair that shares a band hash in any band (sorting each band column: 8 bytes x
bands per row in memory, not a Python dict per band as ``datasketch.MinHashLSH`` keeps), verifies
each candidate pair on its signatures (memory-mapped from disk) against the threshold, and keeps the
first row of every connected group. Every pair of a bucket is checked, not only neighbours: a row
that merely collides with two true duplicates must not hide them from each other. Chains (a~b, b~c)
fall in one group, as in the usual large-scale dedup pipelines.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import ClassVar, Literal

import numpy as np
import pyarrow as pa
from datasketch import MinHash
from datasketch.lsh import _optimal_param
from pydantic import Field, model_validator
from scipy.sparse import coo_matrix  # type: ignore[import-untyped]
from scipy.sparse.csgraph import connected_components  # type: ignore[import-untyped]

from fmstack.data.ops.base import Context, OpConfig, Stats, keep

_WORD = re.compile(r"\w+", re.UNICODE)
_FNV_PRIME = np.uint64(0x100000001B3)


class DedupNearConfig(OpConfig):
    op: Literal["dedup_near"] = "dedup_near"
    kind: ClassVar[Literal["row", "global", "final"]] = "global"
    threshold: float = Field(default=0.8, gt=0, lt=1)
    num_perm: int = Field(default=128, ge=8, le=1024)
    ngram: int = Field(default=3, ge=1, le=32)
    unit: Literal["word", "char"] = "word"
    bands: int | None = Field(default=None, ge=1)  # default: datasketch's optimum for the threshold
    minhash_seed: int = 1

    @model_validator(mode="after")
    def _bands(self) -> DedupNearConfig:
        if self.bands is not None and self.num_perm % self.bands:
            raise ValueError(f"num_perm={self.num_perm} is not a multiple of bands={self.bands}")
        return self

    def band_layout(self) -> tuple[int, int]:
        if self.bands is not None:
            return self.bands, self.num_perm // self.bands
        bands, rows = _optimal_param(self.threshold, self.num_perm, 0.5, 0.5)
        return int(bands), int(rows)

    def build(self) -> DedupNear:
        return DedupNear(self)


def shingles(text: str, n: int, unit: Literal["word", "char"]) -> set[bytes]:
    if unit == "word":
        tokens = _WORD.findall(text.lower())
        grams = {" ".join(tokens[i : i + n]) for i in range(max(len(tokens) - n + 1, 1))}
    else:
        low = text.lower()
        grams = {low[i : i + n] for i in range(max(len(low) - n + 1, 1))}
    return {g.encode() for g in grams}


def band_hashes(signatures: np.ndarray, bands: int, rows: int) -> np.ndarray:
    """(n, num_perm) uint32 -> (n, bands) uint64: FNV-style fold of each band's values."""
    out = np.zeros((signatures.shape[0], bands), dtype=np.uint64)
    with np.errstate(over="ignore"):  # wrapping multiplication is the point
        for j in range(rows):
            out = (out * _FNV_PRIME) ^ signatures[:, j::rows][:, :bands].astype(np.uint64)
    return out


class DedupNear:
    def __init__(self, config: DedupNearConfig) -> None:
        self.config = config
        self.bands, self.rows = config.band_layout()

    def keys(self, table: pa.Table, ctx: Context) -> dict[str, np.ndarray]:
        c = self.config
        texts = table.column("text").to_pylist()
        sets = [shingles(t, c.ngram, c.unit) for t in texts]
        signatures = np.zeros((len(texts), c.num_perm), dtype=np.uint32)
        for i, mh in enumerate(MinHash.generator(sets, num_perm=c.num_perm, seed=c.minhash_seed)):
            signatures[i] = mh.hashvalues
        # Band k is made of signature columns k*rows ... (k+1)*rows - 1 (any fixed split works).
        return {"bands": band_hashes(signatures, self.bands, self.rows), "signatures": signatures}

    def decide(self, keys: Sequence[dict[str, np.ndarray]], ctx: Context) -> tuple[list[np.ndarray], Stats]:
        sizes = [len(k["bands"]) for k in keys]
        n = sum(sizes)
        starts = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
        bands = np.concatenate([k["bands"] for k in keys]) if n else np.zeros((0, self.bands), np.uint64)
        copies, distinct = _fold_identical(bands)
        candidates = np.concatenate([copies, self._candidates(bands, distinct)])
        pairs = self._verified(candidates, keys, starts)
        graph = coo_matrix((np.ones(len(pairs), dtype=np.int8), (pairs[:, 0], pairs[:, 1])), shape=(n, n))
        _, group = connected_components(graph, directed=False)
        first = np.full(group.max() + 1 if n else 0, n, dtype=np.int64)
        np.minimum.at(first, group, np.arange(n))
        mask = first[group] == np.arange(n)
        stats = {
            "duplicates_removed": int(n - mask.sum()),
            "candidate_pairs_verified": len(candidates),  # checked against the threshold
            "near_duplicate_pairs": len(pairs),  # of which reached it
        }
        return np.split(mask, starts[1:-1]), stats

    def _candidates(self, bands: np.ndarray, rows: np.ndarray) -> np.ndarray:
        """Every pair (earlier, later) of ``rows`` that shares a band hash, with repeats removed."""
        found = [_bucket_pairs(bands[rows, b], rows) for b in range(self.bands)]
        pairs = np.concatenate(found) if found else np.zeros((0, 2), np.int64)
        return np.unique(pairs, axis=0) if len(pairs) else pairs.reshape(0, 2)

    def _verified(
        self, pairs: np.ndarray, keys: Sequence[dict[str, np.ndarray]], starts: np.ndarray
    ) -> np.ndarray:
        """Keep pairs whose estimated Jaccard similarity reaches the threshold (LSH only proposes)."""
        if not len(pairs):
            return pairs
        unit = np.searchsorted(starts, pairs, side="right") - 1
        local = pairs - starts[unit]
        ok = np.zeros(len(pairs), dtype=bool)
        groups = np.unique(unit, axis=0)
        for ua, ub in groups:  # vectorised per pair of shards
            at = np.flatnonzero((unit[:, 0] == ua) & (unit[:, 1] == ub))
            a = keys[ua]["signatures"][local[at, 0]]
            b = keys[ub]["signatures"][local[at, 1]]
            ok[at] = (a == b).mean(axis=1) >= self.config.threshold
        return pairs[ok]

    def apply(self, table: pa.Table, decision: np.ndarray, ctx: Context) -> tuple[pa.Table, Stats]:
        return keep(table, decision)


def _fold_identical(bands: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pairs (first, copy) of rows whose band hashes are all equal, and the rows that are first.

    Identical signatures put every copy in the same bucket of every band: folding them first keeps
    the all-pairs bucket check linear in the number of copies (a boilerplate text repeated 10,000
    times would otherwise make 50 million pairs per band).
    """
    if not len(bands):
        return np.zeros((0, 2), np.int64), np.zeros(0, np.int64)
    _, first, inverse = np.unique(bands, axis=0, return_index=True, return_inverse=True)
    rep = first[inverse.reshape(-1)].astype(np.int64)
    rows = np.arange(len(bands), dtype=np.int64)
    copy = rep != rows
    return np.stack([rep[copy], rows[copy]], axis=1), np.sort(first).astype(np.int64)


def _bucket_pairs(column: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """(k, 2) pairs (earlier, later) of ``rows`` whose ``column`` values are equal: all pairs of each
    bucket, made by pairing each sorted position with the one ``gap`` further on while both are in
    the same bucket (work proportional to the pairs made, vectorised over rows)."""
    order = np.argsort(column, kind="stable")
    ordered = column[order]
    # Position of the end of each position's bucket in sorted order.
    boundary = np.flatnonzero(ordered[1:] != ordered[:-1]) + 1
    ends = np.concatenate([boundary, [len(ordered)]])
    end = np.repeat(ends, np.diff(np.concatenate([[0], ends])))
    later = end - np.arange(len(ordered)) - 1  # members after this one in its bucket
    found = []
    at, gap = np.flatnonzero(later >= 1), 1
    while at.size:
        found.append(np.stack([rows[order[at]], rows[order[at + gap]]], axis=1))
        gap += 1
        at = at[later[at] >= gap]
    pairs = np.concatenate(found) if found else np.zeros((0, 2), np.int64)
    pairs.sort(axis=1)
    return pairs
