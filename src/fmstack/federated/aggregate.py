"""Aggregation of client updates into the next global adapter: pure functions over state dicts.

An *update* is a client's trained weights minus the round's global weights (``delta``), keyed like the
adapter's ``adapter_model.safetensors``. Every strategy turns the round's deltas (and their example
counts) into one server step; FedAvg and FedProx apply the weighted mean as is (FedProx differs on the
client: the proximal term in its local loss), FedAdam feeds it to Adam as a pseudo-gradient
(Reddi et al. 2021, "Adaptive Federated Optimization").
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch

from fmstack.errors import InvalidInput

StateDict = dict[str, torch.Tensor]


@dataclass(frozen=True)
class ClientUpdate:
    delta: Mapping[str, torch.Tensor]
    examples: int


def delta(local: Mapping[str, torch.Tensor], global_: Mapping[str, torch.Tensor]) -> StateDict:
    """``local - global`` in float32, key by key (the keys must match: ``validate`` checks first)."""
    return {k: local[k].float() - global_[k].float() for k in global_}


def weighted_mean(updates: Sequence[ClientUpdate], *, equal_weights: bool = False) -> StateDict:
    """sum_i n_i * delta_i / sum_i n_i (or the plain mean), in float64 so the result is exact to
    float32 whatever the order of the clients."""
    if not updates:
        raise InvalidInput("nothing to aggregate: the round has no accepted updates")
    weights = [1.0 if equal_weights else float(u.examples) for u in updates]
    total = sum(weights)
    if total <= 0:
        raise InvalidInput("the round's updates hold no examples: every client reported 0")
    out: StateDict = {}
    for key in updates[0].delta:
        acc = torch.zeros_like(updates[0].delta[key], dtype=torch.float64)
        for w, u in zip(weights, updates, strict=True):
            acc += w * u.delta[key].double()
        out[key] = (acc / total).float()
    return out


def apply(global_: Mapping[str, torch.Tensor], step: Mapping[str, torch.Tensor]) -> StateDict:
    """The next global weights, in the global weights' own dtypes."""
    return {k: (global_[k].float() + step[k]).to(global_[k].dtype) for k in global_}


def fedavg(global_: Mapping[str, torch.Tensor], updates: Sequence[ClientUpdate]) -> StateDict:
    """FedAvg (McMahan et al. 2017): the global weights plus the example-weighted mean delta."""
    return apply(global_, weighted_mean(updates))


@dataclass(frozen=True)
class AdamState:
    m: StateDict
    v: StateDict


def fedadam(
    global_: Mapping[str, torch.Tensor],
    mean_delta: Mapping[str, torch.Tensor],
    state: AdamState | None,
    *,
    lr: float,
    beta1: float = 0.9,
    beta2: float = 0.99,
    tau: float = 1e-3,
) -> tuple[StateDict, AdamState]:
    """One FedAdam server step on the mean delta (the negative pseudo-gradient). ``tau`` is Adam's
    epsilon, large on purpose: it bounds how far a coordinate with a tiny second moment moves."""
    m_prev = state.m if state else {k: torch.zeros_like(d) for k, d in mean_delta.items()}
    v_prev = state.v if state else {k: torch.zeros_like(d) for k, d in mean_delta.items()}
    m = {k: beta1 * m_prev[k] + (1 - beta1) * d for k, d in mean_delta.items()}
    v = {k: beta2 * v_prev[k] + (1 - beta2) * d * d for k, d in mean_delta.items()}
    step = {k: lr * m[k] / (v[k].sqrt() + tau) for k in mean_delta}
    return apply(global_, step), AdamState(m, v)
