"""The coverage-vs-accuracy curve and the threshold choice (``recipes/thresholds.py``), and the
ranking metrics (``recipes/ranking.py``): pure functions on hand-made numbers."""

from __future__ import annotations

import math

import numpy as np
import pytest

from fmstack.recipes import ranking, thresholds


def test_curve_answers_the_most_confident_first_and_keeps_ties_together() -> None:
    confidence = np.array([0.9, 0.8, 0.8, 0.5, 0.3])
    correct = np.array([True, True, False, True, False])
    points = thresholds.curve(confidence, correct)
    assert [(p.threshold, p.coverage) for p in points] == [(0.9, 0.2), (0.8, 0.6), (0.5, 0.8), (0.3, 1.0)]
    assert [p.accuracy for p in points] == pytest.approx([1.0, 2 / 3, 0.75, 0.6])
    chosen, met = thresholds.pick(points, 0.7)
    assert met and chosen.threshold == 0.5  # the most coverage that still reaches 70%
    best, met = thresholds.pick(points, 1.01)
    assert not met and best.threshold == 0.9
    on_new = thresholds.answer(np.array([0.95, 0.4, 0.6]), np.array([True, True, False]), 0.5)
    assert (on_new.coverage, on_new.accuracy) == pytest.approx((2 / 3, 0.5))
    assert [p.coverage for p in thresholds.at_coverage(points, (1.0, 0.7))] == [1.0, 0.8]


def test_recall_and_ndcg_at_k() -> None:
    ranked = [[3, 1, 2], [0, 5, 6], [7, 8, 9]]
    relevant = [{1}, {0, 6}, set()]  # the third query has no relevant item: not scored
    assert ranking.recall_at_k(ranked, relevant, 1) == 0.5
    assert ranking.recall_at_k(ranked, relevant, 2) == 1.0
    first = 1 / math.log2(3)
    second = (1 + 1 / math.log2(4)) / (1 + 1 / math.log2(3))
    assert ranking.ndcg_at_k(ranked, relevant, 3) == pytest.approx((first + second) / 2)
