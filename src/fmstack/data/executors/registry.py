"""Every executor by the name ``--executor`` takes. ``tests/data/executors/test_registry.py`` runs
the contract (results in order, same output digest) over every entry."""

from __future__ import annotations

from fmstack.data.executors.base import Executor
from fmstack.data.executors.local import LocalExecutor
from fmstack.data.executors.ray import RayExecutor
from fmstack.errors import InvalidInput
from fmstack.settings import Settings

EXECUTORS: dict[str, type[LocalExecutor] | type[RayExecutor]] = {
    "local": LocalExecutor,
    "ray": RayExecutor,
}


def make_executor(
    name: str, workers: int | None = None, address: str | None = None, settings: Settings | None = None
) -> Executor:
    """``settings``: the hub's, which an executor spanning machines checks every node can reach."""
    if name not in EXECUTORS:
        raise InvalidInput(f"unknown executor {name!r}: use one of {', '.join(EXECUTORS)}")
    if address is not None and name != "ray":
        raise InvalidInput("--ray-address only applies to --executor ray")
    return EXECUTORS[name](workers=workers, address=address, settings=settings)
