"""A poisoned update (wrong shape, NaN, huge norm) is refused with a reason."""

from __future__ import annotations

import torch

from fmstack.federated.validate import problem

GLOBAL = {"w": torch.zeros(2, 2), "b": torch.zeros(2)}


def test_a_good_update_passes_with_its_norm() -> None:
    reason, norm = problem({"w": torch.ones(2, 2), "b": torch.zeros(2)}, GLOBAL, 10.0)
    assert reason is None and norm == 2.0


def test_poisoned_updates_are_refused_with_the_reason() -> None:
    cases = {
        "wrong shape": {"w": torch.zeros(3, 2), "b": torch.zeros(2)},
        "NaN": {"w": torch.full((2, 2), float("nan")), "b": torch.zeros(2)},
        "above the federation's bound": {"w": torch.full((2, 2), 1e6), "b": torch.zeros(2)},
        "missing b": {"w": torch.zeros(2, 2)},
    }
    for expected, update in cases.items():
        reason, _ = problem(update, GLOBAL, 10.0)
        assert reason is not None and expected in reason, (expected, reason)
