"""Aggregation strategies, by name: the one place a strategy is added (a module + a line here).

Each entry says whether clients add the proximal term to their local loss (FedProx) and how the server
turns the round's mean delta into the next global adapter (``server_step``: plain, or FedAdam's)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from fmstack.errors import InvalidInput, clip


@dataclass(frozen=True)
class Strategy:
    name: str
    proximal: bool  # clients minimise loss + mu/2 ||w - w_global||^2
    server_step: Literal["mean", "adam"]
    summary: str


STRATEGIES: dict[str, Strategy] = {
    "fedavg": Strategy("fedavg", False, "mean", "example-weighted mean of the client deltas"),
    "fedprox": Strategy("fedprox", True, "mean", "FedAvg with a proximal term in each client's loss"),
    "fedadam": Strategy("fedadam", False, "adam", "the mean delta as a pseudo-gradient for server Adam"),
}


def strategy(name: str) -> Strategy:
    try:
        return STRATEGIES[name]
    except KeyError:
        raise InvalidInput(f"unknown strategy {clip(name)!r}: use one of {', '.join(STRATEGIES)}") from None
