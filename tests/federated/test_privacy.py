"""Client-level DP: clipping bounds each client's pull; the noise matches its std; epsilon from opacus."""

from __future__ import annotations

import pytest
import torch

from fmstack.federated.aggregate import ClientUpdate
from fmstack.federated.privacy import clip_delta, epsilon, noise_for, private_mean
from fmstack.federated.validate import l2_norm


def test_clipping_bounds_the_norm_and_keeps_small_deltas() -> None:
    assert l2_norm(clip_delta({"w": torch.tensor([3.0, 4.0])}, 1.0)) == pytest.approx(1.0)
    assert torch.equal(clip_delta({"w": torch.tensor([0.3, 0.4])}, 1.0)["w"], torch.tensor([0.3, 0.4]))


def test_noise_has_the_stated_standard_deviation() -> None:
    updates = [ClientUpdate({"w": torch.zeros(20_000)}, 1) for _ in range(4)]
    noisy = private_mean(updates, clip=2.0, noise_multiplier=1.0, generator=torch.Generator().manual_seed(0))
    assert float(noisy["w"].std()) == pytest.approx(2.0 / 4, rel=0.03)


def test_epsilon_falls_with_noise_and_the_inverse_is_consistent() -> None:
    low, high = epsilon(0.8, 0.1, 20, 1e-5), epsilon(2.0, 0.1, 20, 1e-5)
    assert high < low
    z = noise_for(8.0, 0.3, 20, 1e-5)
    assert epsilon(z, 0.3, 20, 1e-5) == pytest.approx(8.0, rel=0.05)
