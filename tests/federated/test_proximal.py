"""FedProx's term adds mu * (w - w_global) to the gradient, and nothing at the anchor."""

from __future__ import annotations

import torch
from torch import nn

from fmstack.federated.proximal import Proximal


def test_proximal_term_changes_the_gradient_by_mu_times_the_drift() -> None:
    torch.manual_seed(0)
    model = nn.Linear(4, 2)
    penalty = Proximal(model, mu=0.5)
    x = torch.randn(8, 4)
    assert float(penalty()) == 0.0  # at the global weights
    with torch.no_grad():
        model.weight += 0.3
    model.zero_grad()
    model(x).pow(2).mean().backward()
    plain = model.weight.grad.clone()  # type: ignore[union-attr]
    model.zero_grad()
    (model(x).pow(2).mean() + penalty()).backward()
    assert torch.allclose(model.weight.grad - plain, torch.full((2, 4), 0.5 * 0.3), atol=1e-6)  # type: ignore[operator]
