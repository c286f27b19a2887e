"""The confidence threshold of a classifier with a human fallback: pure functions over (confidence,
correct) pairs.

Answering only the requests whose top score is at least ``t`` trades coverage (the share answered)
for accuracy (of those answered). ``curve`` lists that trade-off at every distinct confidence;
``pick`` takes the lowest threshold (the most coverage) whose accuracy reaches a target.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray


@dataclass(frozen=True)
class Point:
    threshold: float  # answer when the top score >= threshold
    coverage: float  # share of requests answered, 0..1
    accuracy: float  # accuracy of the answered ones, 0..1


def curve(confidence: NDArray[np.floating], correct: NDArray[np.bool_]) -> list[Point]:
    """Coverage and accuracy at each distinct confidence, from the highest threshold to the lowest."""
    if len(confidence) == 0:
        return []
    order = np.argsort(-confidence, kind="stable")  # most confident first
    conf, hits = confidence[order], correct[order].astype(np.float64)
    answered = np.arange(1, len(conf) + 1)
    accuracy = np.cumsum(hits) / answered
    # Ties answer together: a threshold keeps every request at or above it, so only the last of each
    # run of equal confidences is a point.
    last = np.r_[conf[1:] != conf[:-1], True]
    return [
        Point(float(c), float(n / len(conf)), float(a))
        for c, n, a in zip(conf[last], answered[last], accuracy[last], strict=True)
    ]


def pick(points: list[Point], target: float) -> tuple[Point, bool]:
    """The point with the most coverage whose accuracy is at least ``target``, and True; when none
    reaches it, the most accurate point (the most coverage among equals), and False."""
    if not points:
        raise ValueError("no points: the validation split is empty")
    reaching = [p for p in points if p.accuracy >= target]
    if reaching:
        return max(reaching, key=lambda p: p.coverage), True
    return max(points, key=lambda p: (p.accuracy, p.coverage)), False


def at_coverage(points: list[Point], coverages: tuple[float, ...]) -> list[Point]:
    """For each coverage, the point of least coverage at or above it: a short table of the curve."""
    table = []
    for wanted in coverages:
        above = [p for p in points if p.coverage >= wanted - 1e-9]
        if above:
            table.append(min(above, key=lambda p: p.coverage))
    return table


def answer(confidence: NDArray[np.floating], correct: NDArray[np.bool_], threshold: float) -> Point:
    """Coverage and accuracy of answering at ``threshold`` (on data the threshold was not chosen on)."""
    kept = confidence >= threshold
    n = int(kept.sum())
    accuracy = float(correct[kept].mean()) if n else 0.0
    return Point(threshold, n / max(len(confidence), 1), accuracy)
