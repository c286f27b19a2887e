"""The weight average (``--ema``): what it computes, and that it is what a run evaluates and keeps."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from accelerate import Accelerator
from torch import nn

from fmstack.errors import InvalidInput
from fmstack.hub import Hub
from fmstack.train.average import WeightAverage
from fmstack.train.loop import Loop, Progress
from fmstack.train.prepare import prepare
from fmstack.train.spec import parse_spec
from tests.train.conftest import fit


def _expected(snapshots: list[dict[str, torch.Tensor]], decay: float) -> dict[str, torch.Tensor]:
    """The average written out: ``snapshots[0]`` the weights before training, then one per step."""
    avg = {n: t.clone() for n, t in snapshots[0].items()}
    for t, weights in enumerate(snapshots[1:]):
        d = min(decay, (1 + t) / (10 + t))
        avg = {n: d * avg[n] + (1 - d) * weights[n] for n in avg}
    return avg


def test_the_average_follows_the_formula_and_swaps_in_and_out() -> None:
    layer = nn.Linear(3, 2)
    frozen = nn.Linear(3, 2).requires_grad_(False)
    model = nn.Sequential(layer, frozen)
    average = WeightAverage(model, 0.9)
    snapshots = [{n: p.detach().clone() for n, p in layer.named_parameters()}]
    for _ in range(30):
        with torch.no_grad():
            for p in layer.parameters():
                p.add_(torch.randn_like(p))
        average.update()
        snapshots.append({n: p.detach().clone() for n, p in layer.named_parameters()})
    expected = _expected(snapshots, 0.9)
    assert set(average.state()) == {"0.weight", "0.bias"}  # the frozen layer is not averaged
    own = {n: p.detach().clone() for n, p in layer.named_parameters()}
    with average.swapped_in():
        for name, param in layer.named_parameters():
            torch.testing.assert_close(param, expected[name])
    for name, param in layer.named_parameters():
        assert torch.equal(param, own[name])  # the training weights are back


def test_a_run_with_ema_evaluates_and_keeps_the_average(
    hub: Hub, tiny_bert: str, topics: str, tmp_path: Path
) -> None:
    spec = {
        "task": "classification", "method": "full", "base": tiny_bert, "data": topics,
        "batch_size": 8, "max_steps": 12, "seed": 3, "lr": 1e-3,
    }  # fmt: skip
    # The raw trajectory: the weights before training and after every step (the average does not
    # change how the run trains, so a run without it walks the same path).
    plain = Loop(prepare(hub, parse_spec(spec)), Accelerator(cpu=True), tmp_path / "plain")
    trained = {n for n, p in plain.model.named_parameters() if p.requires_grad}
    snapshot = lambda: {n: p.detach().clone() for n, p in plain.model.named_parameters() if n in trained}  # noqa: E731
    snapshots = [snapshot()]

    def record(_: Progress) -> None:
        snapshots.append(snapshot())

    plain.report = record
    plain.fit()

    averaged = Loop(prepare(hub, parse_spec({**spec, "ema": 0.8})), Accelerator(cpu=True), tmp_path / "ema")
    result = averaged.fit()
    expected = _expected(snapshots, 0.8)
    kept = dict(result.model.named_parameters())
    for name in trained:
        torch.testing.assert_close(kept[name], expected[name], rtol=1e-5, atol=1e-6)
    assert result.final == averaged.evaluate()  # the reported metrics are those of the kept weights


def test_ema_must_be_a_decay_below_one() -> None:
    base = {"task": "classification", "base": "a/b", "data": "c/d"}
    with pytest.raises(InvalidInput, match="ema"):
        parse_spec({**base, "ema": 1.0})
    assert parse_spec({**base, "ema": 0.999}).ema == 0.999


def test_resuming_with_ema_from_a_run_without_it_says_what_to_do(
    hub: Hub, tiny_bert: str, topics: str, tmp_path: Path
) -> None:
    spec = {"task": "classification", "base": tiny_bert, "data": topics, "batch_size": 8, "max_steps": 2}
    fit(hub, tmp_path, **spec, save_every=1)
    with pytest.raises(InvalidInput, match="without --ema"):
        fit(hub, tmp_path, **spec, save_every=1, ema=0.9, resume=True)
