"""Contract: every strategy aggregates a round, and the spec accepts it by name."""

from __future__ import annotations

import pytest
import torch

from fmstack.federated import registry
from fmstack.federated.rounds import server_step
from fmstack.federated.spec import parse_spec


@pytest.mark.parametrize("name", list(registry.STRATEGIES))
def test_every_strategy_steps_towards_the_clients(name: str) -> None:
    spec = parse_spec({"name": "acme/fed", "base": "acme/base", "labels": ["a", "b"], "strategy": name})
    assert spec.prox_mu == (spec.mu if registry.STRATEGIES[name].proximal else 0.0)
    global_ = {"w": torch.zeros(3)}
    result = server_step(spec, 1, global_, [({"w": torch.ones(3)}, 5), ({"w": torch.ones(3)}, 1)], None)
    assert bool((result.weights["w"] > 0).all())
    assert (result.server_state is not None) == (registry.STRATEGIES[name].server_step == "adam")
    again = server_step(spec, 2, result.weights, [({"w": torch.ones(3)}, 1)], result.server_state)
    assert bool((again.weights["w"] >= result.weights["w"]).all())


def test_a_bad_spec_lists_every_problem() -> None:
    with pytest.raises(Exception, match="3 problem") as info:
        parse_spec(
            {"name": "fed", "base": "acme/base", "labels": ["a", "b"], "strategy": "fedsgd", "min_clients": 9}
        )
    assert "strategy" in str(info.value) and "min_clients" in str(info.value)
