from __future__ import annotations

import numpy as np

from fmstack.data.stats import PERCENTILES, Histogram


def test_histogram_percentiles_match_numpy() -> None:
    rng = np.random.default_rng(0)
    values = rng.integers(0, 500, size=10_001)
    hist = Histogram()
    for chunk in np.array_split(values, 7):
        hist.add(chunk)
    expected = np.percentile(values, PERCENTILES, method="lower")
    assert hist.percentiles() == {f"p{p}": int(v) for p, v in zip(PERCENTILES, expected, strict=True)}
    assert Histogram().percentiles() == {}
