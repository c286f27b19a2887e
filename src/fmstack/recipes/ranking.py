"""Ranking metrics with binary relevance: pure functions over ranked item ids per query."""

from __future__ import annotations

import math
from collections.abc import Sequence


def recall_at_k(ranked: Sequence[Sequence[int]], relevant: Sequence[set[int]], k: int) -> float:
    """Share of queries with at least one relevant item in their top k (the usual "hit rate" form of
    recall@k for retrieval with one right answer or many interchangeable ones)."""
    scored = [(r, rel) for r, rel in zip(ranked, relevant, strict=True) if rel]
    if not scored:
        return 0.0
    return sum(any(i in rel for i in r[:k]) for r, rel in scored) / len(scored)


def ndcg_at_k(ranked: Sequence[Sequence[int]], relevant: Sequence[set[int]], k: int) -> float:
    """Mean nDCG@k: each relevant item at rank i (0-based) gains 1 / log2(i + 2), divided by the gain
    of the best possible ranking (all relevant items first)."""
    values = []
    for r, rel in zip(ranked, relevant, strict=True):
        if not rel:
            continue
        dcg = sum(1 / math.log2(i + 2) for i, item in enumerate(r[:k]) if item in rel)
        ideal = sum(1 / math.log2(i + 2) for i in range(min(k, len(rel))))
        values.append(dcg / ideal)
    return sum(values) / len(values) if values else 0.0
