"""``dedup_near``: drop rows whose text is a near duplicate (Jaccard over n-gram shingles) of an
earlier row, with MinHash LSH.

Global across shards: each shard computes its rows' MinHash signatures (datasketch, in parallel) and
stores them with one 64-bit hash per LSH band. The driver then groups rows whose band hashes collide
in any band (sorting each band column: 8 bytes x bands per row in memory, not a Python dict per
band as ``datasketch.MinHashLSH`` keeps), verifies each candidate pair on its signatures (memory-
mapped from disk) against the threshold, and keeps the first row of every connected group. Chains
(a~b, b~c) fall in one group, as in the usual large-scale dedup pipelines.
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
        # Band b is made of signature columns b, b + bands, b + 2*bands, ... (any fixed split works).
        return {"bands": band_hashes(signatures, self.bands, self.rows), "signatures": signatures}

    def decide(self, keys: Sequence[dict[str, np.ndarray]], ctx: Context) -> tuple[list[np.ndarray], Stats]:
        sizes = [len(k["bands"]) for k in keys]
        n = sum(sizes)
        starts = np.concatenate([[0], np.cumsum(sizes)])
        pairs = self._candidates(keys, n)
        pairs = self._verified(pairs, keys, starts)
        graph = coo_matrix((np.ones(len(pairs), dtype=np.int8), (pairs[:, 0], pairs[:, 1])), shape=(n, n))
        _, group = connected_components(graph, directed=False)
        first = np.full(group.max() + 1 if n else 0, n, dtype=np.int64)
        np.minimum.at(first, group, np.arange(n))
        mask = first[group] == np.arange(n)
        stats = {"duplicates_removed": int(n - mask.sum()), "candidate_pairs_verified": len(pairs)}
        return np.split(mask, starts[1:-1]), stats

    def _candidates(self, keys: Sequence[dict[str, np.ndarray]], n: int) -> np.ndarray:
        """Pairs (earlier, later) of rows that share a band hash, with repeats removed."""
        found = []
        for b in range(self.bands):
            column = np.concatenate([k["bands"][:, b] for k in keys]) if keys else np.zeros(0, np.uint64)
            order = np.argsort(column, kind="stable")
            same = column[order[1:]] == column[order[:-1]]
            # Link each row to the previous row of its bucket: enough for connected groups.
            found.append(np.stack([order[:-1][same], order[1:][same]], axis=1))
        pairs = np.concatenate(found) if found else np.zeros((0, 2), np.int64)
        pairs.sort(axis=1)
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
