"""One round's server step, from the global weights and the accepted client weights to the next global
weights: deltas, the strategy's step (with client-level DP when the spec asks), and what to record.
Pure: the coordinator reads and writes the versions and the database around it."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import torch
from safetensors.torch import load, save

from fmstack.federated import aggregate, privacy, registry
from fmstack.federated.aggregate import AdamState, ClientUpdate, StateDict
from fmstack.federated.spec import FederationSpec


@dataclass(frozen=True)
class RoundResult:
    weights: StateDict
    server_state: bytes | None  # FedAdam's moments, safetensors
    metrics: dict[str, float] = field(default_factory=dict)


def noise_multiplier(spec: FederationSpec) -> float:
    dp = spec.dp
    if dp is None:
        return 0.0
    if dp.noise_multiplier is not None:
        return dp.noise_multiplier
    target = dp.target_epsilon or 0.0  # the spec's validator: one of the two is set
    return privacy.noise_for(target, sample_rate(spec), spec.rounds, dp.delta)


def sample_rate(spec: FederationSpec) -> float:
    return min(1.0, spec.clients_per_round / spec.dp.population) if spec.dp else 1.0


def epsilon_after(spec: FederationSpec, rounds: int) -> float | None:
    if spec.dp is None:
        return None
    return privacy.epsilon(noise_multiplier(spec), sample_rate(spec), rounds, spec.dp.delta)


def noise_generator(federation: str, number: int) -> torch.Generator:
    """Noise seeded by federation and round: a round aggregated twice (a coordinator that died between
    pushing the version and closing the round) gives the same version, not a second draw."""
    seed = int.from_bytes(hashlib.sha256(f"{federation}:{number}".encode()).digest()[:8], "little")
    return torch.Generator().manual_seed(seed)


def server_step(
    spec: FederationSpec,
    number: int,
    global_: Mapping[str, torch.Tensor],
    clients: Sequence[tuple[Mapping[str, torch.Tensor], int]],
    server_state: bytes | None,
) -> RoundResult:
    """``clients``: (trained weights, examples) of every accepted update."""
    updates = [ClientUpdate(aggregate.delta(w, global_), n) for w, n in clients]
    metrics: dict[str, float] = {
        "clients": float(len(updates)),
        "examples": float(sum(n for _, n in clients)),
    }
    if spec.dp is not None:
        z = noise_multiplier(spec)
        mean = privacy.private_mean(updates, spec.dp.clip, z, noise_generator(spec.name, number))
        metrics |= {"noise_multiplier": z, "epsilon": float(epsilon_after(spec, number) or 0.0)}
    else:
        mean = aggregate.weighted_mean(updates)
    if registry.strategy(spec.strategy).server_step == "adam":
        state = _load_adam(server_state)
        weights, new_state = aggregate.fedadam(global_, mean, state, lr=spec.server_lr)
        return RoundResult(weights, _save_adam(new_state), metrics)
    return RoundResult(aggregate.apply(global_, mean), None, metrics)


def _load_adam(blob: bytes | None) -> AdamState | None:
    if blob is None:
        return None
    flat = load(blob)
    return AdamState(
        {k[2:]: v for k, v in flat.items() if k.startswith("m.")},
        {k[2:]: v for k, v in flat.items() if k.startswith("v.")},
    )


def _save_adam(state: AdamState) -> bytes:
    flat = {f"m.{k}": v.contiguous() for k, v in state.m.items()} | {
        f"v.{k}": v.contiguous() for k, v in state.v.items()
    }
    return save(flat)
