"""FedProx's proximal term (Li et al. 2020): ``mu / 2 * ||w - w_global||^2`` over the trained
parameters, added to each local step's loss so a client cannot drift far from the round's global
adapter on skewed data. Its gradient is ``mu * (w - w_global)``."""

from __future__ import annotations

import torch
from torch import nn


class Proximal:
    """Anchors the trainable parameters of ``module`` at their values now (the global adapter)."""

    def __init__(self, module: nn.Module, mu: float) -> None:
        self.mu = mu
        self.pairs = [(p, p.detach().clone()) for p in module.parameters() if p.requires_grad]

    def __call__(self) -> torch.Tensor:
        total = sum(((p - anchor.to(p.device)) ** 2).sum() for p, anchor in self.pairs)
        return (self.mu / 2) * torch.as_tensor(total)
