"""An exponential moving average of the trained weights (Polyak averaging), evaluated and kept in
place of the last step's weights.

After every optimizer step each average moves towards its weight: ``avg += (1 - d) * (w - avg)``. The
decay ``d`` starts low and grows to its target, ``d_t = min(decay, (1 + t) / (10 + t))`` as in
TensorFlow's ``ExponentialMovingAverage``, so that a short run is not dominated by the initial weights.

``torch.optim.swa_utils.AveragedModel`` keeps a deep copy of the whole module, buffers included, and
leaves evaluation and checkpoints to the caller; here only the trainable tensors are averaged (an
adapter run averages its adapter, not the frozen base), with one fused ``_foreach_lerp_`` per step,
and the average is swapped into the module itself to evaluate and save it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import nn


class WeightAverage:
    def __init__(self, module: nn.Module, decay: float) -> None:
        self.decay = decay
        self.updates = 0
        self._params = {n: p for n, p in module.named_parameters() if p.requires_grad}
        self._avg = {n: p.detach().clone().float() for n, p in self._params.items()}
        # the same tensors in matching order, for one fused update per step
        self._pairs = ([self._avg[n] for n in self._params], [p.detach() for p in self._params.values()])

    def rate(self) -> float:
        """The decay of the next update."""
        return min(self.decay, (1 + self.updates) / (10 + self.updates))

    @torch.no_grad()
    def update(self) -> None:
        averages, params = self._pairs
        torch._foreach_lerp_(averages, [p.float() for p in params], 1.0 - self.rate())
        self.updates += 1

    def state(self) -> dict[str, torch.Tensor]:
        """The averaged weights, on the CPU (for checkpoints)."""
        return {n: t.detach().cpu().contiguous() for n, t in self._avg.items()}

    def load(self, weights: dict[str, torch.Tensor], updates: int) -> None:
        missing = set(self._avg) ^ set(weights)
        if missing:
            raise ValueError(
                f"the checkpoint's weight average does not match the model: {sorted(missing)[:3]}"
            )
        for name, value in weights.items():
            self._avg[name].copy_(value)
        self.updates = updates

    @torch.no_grad()
    def copy_to_model(self) -> None:
        for name, param in self._params.items():
            param.copy_(self._avg[name].to(param.dtype))

    @contextmanager
    def swapped_in(self) -> Iterator[None]:
        """The module holds the averaged weights inside the block, its own ones again after."""
        own = {n: p.detach().clone() for n, p in self._params.items()}
        self.copy_to_model()
        try:
            yield
        finally:
            with torch.no_grad():
                for name, param in self._params.items():
                    param.copy_(own[name])
