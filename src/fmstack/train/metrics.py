"""Task metrics as pure functions over arrays: accuracy, macro-F1, per-class report, recall@k,
perplexity. The same functions run during training, in ``fmstack eval`` and in compress's gate."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from sklearn.metrics import classification_report, f1_score


def classification_metrics(
    preds: np.ndarray, labels: np.ndarray, names: list[str], multi_label: bool = False
) -> dict[str, Any]:
    """preds/labels: (n,) class ids, or (n, classes) 0/1 for multi-label."""
    if multi_label:
        accuracy = float((preds == labels).all(axis=1).mean()) if len(labels) else 0.0
    else:
        accuracy = float((preds == labels).mean()) if len(labels) else 0.0
    ids = list(range(len(names)))
    f1 = f1_score(labels, preds, average="macro", labels=None if multi_label else ids, zero_division=0)
    report = classification_report(
        labels,
        preds,
        labels=ids,
        target_names=names,
        output_dict=True,
        zero_division=0,
    )
    per_class = {n: {k: float(v) for k, v in report[n].items()} for n in names if n in report}
    return {"accuracy": accuracy, "macro_f1": float(f1), "per_class": per_class}


def recall_at_k(
    queries: np.ndarray,
    keys: np.ndarray,
    relevant: list[set[int]],
    ks: tuple[int, ...] = (1, 5, 10),
    exclude_self: bool = False,
) -> dict[str, float]:
    """queries (n, d), keys (m, d), both L2-normalised; relevant[i]: key ids that answer query i.
    A query counts when any relevant key is among its top k by cosine similarity; queries with no
    relevant key are left out."""
    sims = queries @ keys.T  # (n, m)
    if exclude_self:  # queries are the keys: a text must not retrieve itself
        np.fill_diagonal(sims, -np.inf)
    order = np.argsort(-sims, axis=1)
    out: dict[str, float] = {}
    for k in ks:
        top = order[:, :k]
        hits = [bool(relevant[i] & set(top[i].tolist())) for i in range(len(relevant)) if relevant[i]]
        out[f"recall@{k}"] = float(np.mean(hits)) if hits else 0.0
    return out


def perplexity(loss_sum: float, tokens: int) -> dict[str, float]:
    mean = loss_sum / max(tokens, 1)
    return {"loss": mean, "perplexity": float(math.exp(min(mean, 50.0)))}
