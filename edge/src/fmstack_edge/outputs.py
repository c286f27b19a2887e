"""Model outputs -> answers: pooling, normalisation, scores; the same math as ``fmstack serve``
(``serve/runtimes/pooling.py``), so a device answers exactly what the server answers."""

from __future__ import annotations

from typing import Literal

import numpy as np
from numpy.typing import NDArray


def pool(
    hidden: NDArray[np.float32], mask: NDArray[np.int64], how: Literal["mean", "cls"]
) -> NDArray[np.float32]:
    """(batch, seq, hidden) token states -> (batch, hidden), ignoring padding for the mean."""
    if how == "cls":
        out: NDArray[np.float32] = np.ascontiguousarray(hidden[:, 0, :], dtype=np.float32)
        return out
    weights = mask[:, :, None].astype(np.float32)  # (batch, seq, 1)
    summed = (hidden * weights).sum(axis=1)  # (batch, hidden)
    counts = np.clip(weights.sum(axis=1), 1e-9, None)  # (batch, 1)
    mean: NDArray[np.float32] = (summed / counts).astype(np.float32)
    return mean


def l2_normalize(vectors: NDArray[np.float32]) -> NDArray[np.float32]:
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    unit: NDArray[np.float32] = (vectors / np.clip(norms, 1e-12, None)).astype(np.float32)
    return unit


def scores(logits: NDArray[np.float32], multi_label: bool) -> NDArray[np.float32]:
    """(batch, labels) logits -> probabilities: a softmax, or independent sigmoids for multi-label."""
    logits = logits.astype(np.float32)
    if multi_label:
        probs: NDArray[np.float32] = (1.0 / (1.0 + np.exp(-logits))).astype(np.float32)
        return probs
    shifted = np.exp(logits - logits.max(axis=1, keepdims=True))  # max-shifted for stability
    softmax: NDArray[np.float32] = (shifted / shifted.sum(axis=1, keepdims=True)).astype(np.float32)
    return softmax
