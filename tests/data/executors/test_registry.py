"""The executor contract, over every entry of ``EXECUTORS``: results come back in task order, and a
pipeline run on the executor (2 workers) gives the same digest as a serial in-process run."""

from __future__ import annotations

import pytest

from fmstack.data.executors.registry import EXECUTORS, make_executor
from fmstack.data.pipeline import process
from fmstack.data.spec import parse_spec
from fmstack.errors import InvalidInput
from fmstack.hub import Hub

# Two global ops (three stages, each a Ray Data job): enough to cross the driver/worker boundary
# both ways, short enough for CI.
OPS = [{"op": "normalize"}, {"op": "dedup_exact"}, {"op": "split"}, {"op": "augment", "multiplier": 2}]


def square(x: int) -> int:
    return x * x


@pytest.mark.slow
@pytest.mark.parametrize("name", list(EXECUTORS))
def test_executor_contract(name: str, hub: Hub, raw_ref: str) -> None:
    reference = process(hub, parse_spec({"input": raw_ref, "output": "acme/serial", "ops": OPS}), workers=1)
    with make_executor(name, workers=2) as pool:
        assert list(pool.map(square, list(range(7)))) == [x * x for x in range(7)]
        assert list(pool.map(square, [])) == []
    spec = parse_spec({"input": raw_ref, "output": f"acme/{name}", "ops": OPS})
    result = process(hub, spec, executor=name, workers=2)
    assert result.published.version.digest == reference.published.version.digest
    assert result.rows == reference.rows


def test_unknown_executor_and_misplaced_address() -> None:
    with pytest.raises(InvalidInput, match="unknown executor 'spark'"):
        make_executor("spark")
    with pytest.raises(InvalidInput, match="--ray-address"):
        make_executor("local", address="ray://head:10001")
