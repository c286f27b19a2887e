"""Client-level differential privacy (DP-FedAvg, McMahan et al. 2018, "Learning Differentially Private
Recurrent Language Models"): each client's delta is clipped to L2 norm ``clip``, the clipped deltas are
averaged with equal weights, and Gaussian noise of standard deviation ``noise_multiplier * clip / m``
(m clients in the round) is added to the mean. Epsilon comes from opacus' RDP accountant: one
subsampled Gaussian step per round with sampling rate clients-per-round / clients.

The coordinator sees individual updates (no secure aggregation): this protects what the *published*
global adapters reveal about any one client's data, not what the server sees.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import lru_cache

import torch

from fmstack.federated.aggregate import ClientUpdate, StateDict, weighted_mean
from fmstack.federated.validate import l2_norm


def clip_delta(delta: Mapping[str, torch.Tensor], clip: float) -> StateDict:
    norm = l2_norm(delta)
    scale = min(1.0, clip / norm) if norm > 0 else 1.0
    return {k: t.float() * scale for k, t in delta.items()}


def private_mean(
    updates: Sequence[ClientUpdate], clip: float, noise_multiplier: float, generator: torch.Generator
) -> StateDict:
    """The clipped, equally weighted mean delta plus Gaussian noise. Equal weights: weighting by
    example counts would let one client with many examples move the mean by more than clip / m."""
    clipped = [ClientUpdate(clip_delta(u.delta, clip), u.examples) for u in updates]
    mean = weighted_mean(clipped, equal_weights=True)
    std = noise_multiplier * clip / len(updates)
    return {k: t + std * torch.randn(t.shape, generator=generator, dtype=t.dtype) for k, t in mean.items()}


@lru_cache(maxsize=256)  # the accountant takes seconds; status pages ask often
def epsilon(noise_multiplier: float, sample_rate: float, rounds: int, delta: float) -> float:
    """The (epsilon, delta) guarantee after ``rounds`` rounds, by opacus' RDP accountant."""
    if rounds <= 0:
        return 0.0
    from opacus.accountants import RDPAccountant  # type: ignore[import-untyped]

    accountant = RDPAccountant()
    accountant.history = [(noise_multiplier, sample_rate, rounds)]
    return float(accountant.get_epsilon(delta=delta))


@lru_cache(maxsize=64)
def noise_for(target_epsilon: float, sample_rate: float, rounds: int, delta: float) -> float:
    """The smallest noise multiplier that keeps epsilon within ``target_epsilon`` after ``rounds``."""
    from opacus.accountants.utils import get_noise_multiplier  # type: ignore[import-untyped]

    return float(
        get_noise_multiplier(
            target_epsilon=target_epsilon,
            target_delta=delta,
            sample_rate=sample_rate,
            steps=rounds,
            accountant="rdp",
            epsilon_tolerance=0.05,  # never above the target (opacus returns the safe end); 5x faster
        )
    )
