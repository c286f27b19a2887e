"""Drift scores on synthetic data: shifted samples are flagged, samples from the same source are not."""

from __future__ import annotations

import numpy as np

from fmstack.monitor import drift


def test_label_psi_flags_a_shift_and_not_resampling() -> None:
    rng = np.random.default_rng(0)
    labels = [f"intent{i}" for i in range(10)]
    training = dict.fromkeys(labels, 100)
    same = {k: int(v) for k, v in zip(labels, rng.multinomial(1000, [0.1] * 10), strict=True)}
    shifted_shares = np.array([0.4, 0.3] + [0.0375] * 8)
    shifted = {k: int(v) for k, v in zip(labels, rng.multinomial(1000, shifted_shares), strict=True)}
    assert drift.severity(drift.psi(training, same)) == "stable"
    assert drift.severity(drift.psi(training, shifted)) == "significant"
    assert drift.psi(training, {"never-seen": 50, **same}) > drift.psi(training, same)  # a new label counts


def test_confidence_psi_flags_falling_confidence() -> None:
    rng = np.random.default_rng(1)
    reference = rng.beta(8, 2, 2000)  # a confident model on held-out data
    same = rng.beta(8, 2, 500)
    unsure = rng.beta(3, 3, 500)  # traffic it was not trained for
    assert drift.psi_continuous(reference, same) < drift.PSI_MODERATE
    assert drift.psi_continuous(reference, unsure) > drift.PSI_SIGNIFICANT
    assert drift.psi_continuous([0.9] * 50, [0.9] * 20) == 0.0  # a constant reference still works


def test_mmd_two_sample_test() -> None:
    rng = np.random.default_rng(2)
    reference = rng.normal(size=(150, 16))
    same = rng.normal(size=(150, 16))
    moved = rng.normal(size=(150, 16)) + np.r_[0.6, 0.6, np.zeros(14)]  # a shift in 2 of 16 dimensions
    unshifted = drift.mmd_test(reference, same, permutations=100)
    shifted = drift.mmd_test(reference, moved, permutations=100)
    assert not unshifted.drifted() and unshifted.p_value > 0.05
    assert shifted.drifted() and shifted.p_value < 0.02
    assert shifted.mmd2 > unshifted.mmd2
