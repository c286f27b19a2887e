from __future__ import annotations

import pytest
import torch
from transformers import get_scheduler

from fmstack.train.schedule import lr_factor, make_scheduler

HF_NAME = {"linear": "linear", "cosine": "cosine", "constant": "constant_with_warmup"}


def test_warmup_then_linear_and_cosine_decay() -> None:
    assert lr_factor(0, 100, 10, "linear") == pytest.approx(0.1)
    assert lr_factor(9, 100, 10, "linear") == pytest.approx(1.0)
    assert lr_factor(55, 100, 10, "linear") == pytest.approx(0.5)
    assert lr_factor(55, 100, 10, "cosine") == pytest.approx(0.5)
    assert lr_factor(100, 100, 10, "cosine") == pytest.approx(0.0)
    assert lr_factor(80, 100, 0, "constant") == 1.0


def _rates(kind: str, total: int, warmup: int, ours: bool) -> list[float]:
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    if ours:
        scheduler = make_scheduler(optimizer, total, warmup, kind)
    else:
        scheduler = get_scheduler(HF_NAME[kind], optimizer, num_warmup_steps=warmup, num_training_steps=total)
    rates = []
    for _ in range(total):
        rates.append(scheduler.get_last_lr()[0])
        optimizer.step()
        scheduler.step()
    return rates


@pytest.mark.parametrize("kind", ["linear", "cosine", "constant"])
@pytest.mark.parametrize("warmup", [0, 1, 6])
def test_the_same_as_transformers_get_scheduler_but_for_a_first_step_at_zero(kind: str, warmup: int) -> None:
    """Why schedule.py is ours: transformers' warmup starts at rate 0; after warmup they are equal."""
    ours, theirs = _rates(kind, 40, warmup, ours=True), _rates(kind, 40, warmup, ours=False)
    assert ours[warmup:] == pytest.approx(theirs[warmup:], abs=1e-12)
    if warmup:
        assert theirs[0] == 0.0 and ours[0] == pytest.approx(1 / warmup)  # every step of ours trains
        assert ours[: warmup - 1] == pytest.approx(theirs[1:warmup])  # one step ahead during warmup
        assert ours[warmup - 1] == 1.0 and theirs[warmup - 1] < 1.0
