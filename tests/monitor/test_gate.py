"""The promotion gate: each condition fails when it must, and says so with its numbers."""

from __future__ import annotations

from fmstack.monitor.gate import GateSpec, Scores, decide, score

TRUTH = ["a"] * 10 + ["b"] * 10


def _scores(right_a: int, right_b: int) -> Scores:
    predicted = ["a"] * right_a + ["b"] * (10 - right_a) + ["b"] * right_b + ["a"] * (10 - right_b)
    return score(predicted, TRUTH)


def test_a_better_candidate_passes() -> None:
    spec = GateSpec(holdout="x/y:1", min_gain=0.05, min_feedback_rows=5)
    verdict = decide(spec, _scores(7, 7), _scores(9, 9), _scores(5, 5), _scores(8, 8))
    assert verdict.passed and verdict.reasons == []
    assert verdict.figures["holdout_candidate"] == 0.9


def test_a_gate_that_must_fail_fails_with_every_reason() -> None:
    spec = GateSpec(
        holdout="x/y:1", min_gain=0.0, min_feedback_gain=0.1, max_class_drop=0.2, min_feedback_rows=5
    )
    # Better on average, but class b loses 30 points of recall; no better on feedback.
    verdict = decide(spec, _scores(6, 9), _scores(10, 6), _scores(7, 7), _scores(7, 7))
    assert not verdict.passed
    assert any("gain +0.0000 < min_feedback_gain" in r for r in verdict.reasons)
    assert any("b -0.300" in r for r in verdict.reasons)
    worse = decide(GateSpec(holdout="x/y:1"), _scores(9, 9), _scores(8, 8), _scores(7, 7), _scores(7, 7))
    assert not worse.passed and "held-out accuracy 0.8000 vs production 0.9000" in worse.reasons[0]
    too_little = decide(
        GateSpec(holdout="x/y:1", min_feedback_rows=50),
        _scores(7, 7),
        _scores(9, 9),
        _scores(7, 7),
        _scores(9, 9),
    )
    assert not too_little.passed and "wait for more feedback" in too_little.reasons[0]
