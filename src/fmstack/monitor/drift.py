"""Drift scores: pure functions over counts, samples and vectors.

- ``psi``: the population stability index over categories (predicted labels against the training
  data's labels) or over bins of a score (confidence against the model's confidence on held-out
  data). PSI = sum_i (a_i - e_i) ln(a_i / e_i) over the shares e (expected) and a (actual); the
  customary reading (Siddiqi, *Credit Risk Scorecards*, Wiley 2006, ch. 8; Yurdakul, "Statistical
  properties of the population stability index", Western Michigan University, 2018) is below 0.1
  stable, 0.1 to 0.25 a moderate shift, above 0.25 a significant one.
- ``mmd_test``: a two-sample test in embedding space: the squared maximum mean discrepancy with a
  Gaussian kernel (bandwidth by the median heuristic) and its p-value from a permutation test
  (Gretton, Borgwardt, Rasch, Schölkopf, Smola, "A Kernel Two-Sample Test", JMLR 13, 2012). Rabanser,
  Günnemann and Lipton ("Failing Loudly", NeurIPS 2019) found it among the best detectors of dataset
  shift on learned representations.

Written here rather than taken from ``evidently`` or ``alibi-detect``: both pull in large dependency
trees (alibi-detect pins tensorflow or torch extras and its own numpy bounds; evidently brings its
own UI stack and pins pydantic/fastapi ranges that the server shares), for about sixty lines of numpy.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

PSI_MODERATE = 0.1
PSI_SIGNIFICANT = 0.25
_EPSILON = 1e-4  # share given to an empty category, so that ln(a / e) stays finite


def psi(expected: Mapping[str, float], actual: Mapping[str, float]) -> float:
    """PSI between two distributions over the same categories (counts or shares; a category missing
    from one side counts 0 there)."""
    keys = sorted(set(expected) | set(actual))
    e = np.array([float(expected.get(k, 0)) for k in keys])
    a = np.array([float(actual.get(k, 0)) for k in keys])
    if e.sum() <= 0 or a.sum() <= 0:
        return 0.0
    e = np.clip(e / e.sum(), _EPSILON, None)
    a = np.clip(a / a.sum(), _EPSILON, None)
    return float(np.sum((a - e) * np.log(a / e)))


def binned(values: Sequence[float] | NDArray[np.floating], edges: NDArray[np.floating]) -> dict[str, float]:
    """Counts of ``values`` in the bins ``edges`` delimits, keyed by bin index, for ``psi``."""
    counts, _ = np.histogram(np.clip(np.asarray(values, dtype=float), edges[0], edges[-1]), bins=edges)
    return {str(i): float(c) for i, c in enumerate(counts)}


def psi_continuous(
    reference: Sequence[float] | NDArray[np.floating],
    current: Sequence[float] | NDArray[np.floating],
    bins: int = 10,
) -> float:
    """PSI of a score (confidence) over ``bins`` quantile bins of the reference (equal shares of it)."""
    ref = np.asarray(reference, dtype=float)
    if ref.size == 0 or len(current) == 0:
        return 0.0
    edges = np.unique(np.quantile(ref, np.linspace(0, 1, bins + 1)))
    if edges.size < 2:  # a constant reference: one bin around it and one for everything else
        edges = np.array([ref[0] - 1e-9, ref[0] + 1e-9])
        inside = np.abs(np.asarray(current, dtype=float) - ref[0]) <= 1e-9
        return psi({"in": 1.0, "out": 0.0}, {"in": float(inside.sum()), "out": float((~inside).sum())})
    return psi(binned(ref, edges), binned(current, edges))


def severity(score: float) -> str:
    if score >= PSI_SIGNIFICANT:
        return "significant"
    return "moderate" if score >= PSI_MODERATE else "stable"


@dataclass(frozen=True)
class MmdResult:
    mmd2: float  # the (biased) squared MMD of the two samples
    p_value: float  # share of label permutations with an MMD at least as large
    permutations: int
    n_reference: int
    n_current: int

    def drifted(self, alpha: float = 0.05) -> bool:
        return self.p_value < alpha


def _mmd2(kernel: NDArray[np.float64], n: int) -> float:
    """Biased MMD^2 from the joint kernel matrix whose first ``n`` rows/cols are sample x."""
    xx, yy, xy = kernel[:n, :n], kernel[n:, n:], kernel[:n, n:]
    return float(xx.mean() + yy.mean() - 2 * xy.mean())


def mmd_test(
    reference: NDArray[np.floating],
    current: NDArray[np.floating],
    permutations: int = 200,
    seed: int = 0,
) -> MmdResult:
    """Kernel two-sample test of ``reference`` (n, d) against ``current`` (m, d)."""
    x = np.asarray(reference, dtype=np.float64)
    y = np.asarray(current, dtype=np.float64)
    joint = np.concatenate([x, y])  # (n + m, d)
    squared = np.sum(joint**2, axis=1)
    distances = np.maximum(squared[:, None] + squared[None, :] - 2 * joint @ joint.T, 0)  # (n+m, n+m)
    off_diagonal = distances[np.triu_indices_from(distances, k=1)]
    bandwidth = float(np.median(off_diagonal)) or 1.0  # the median heuristic (Gretton et al., 2012)
    kernel = np.exp(-distances / bandwidth)
    n = len(x)
    observed = _mmd2(kernel, n)
    rng = np.random.default_rng(seed)
    at_least = 0
    for _ in range(permutations):
        order = rng.permutation(len(joint))
        if _mmd2(kernel[np.ix_(order, order)], n) >= observed:
            at_least += 1
    return MmdResult(observed, (at_least + 1) / (permutations + 1), permutations, n, len(y))
