"""Bottleneck adapters, Houlsby (after attention and feed-forward) or Pfeiffer (after feed-forward),
with the task head; their layers are in ``bottleneck.py``. Not mergeable: they add a non-linear layer."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from fmstack.errors import Unsupported
from fmstack.train.methods import shared

if TYPE_CHECKING:
    from torch import nn


name = "adapter"
is_adapter = True
adapter_format = "fmstack"
tasks = ("classification", "embedding", "mlm", "clm")
default_lr = 1e-3
default_head_lr = None
options = ("adapter_type", "adapter_size")
rules = shared.no_rules
flops_per_token = shared.frozen_base_flops
training_view = shared.as_given


def apply(model: nn.Module, spec: Any, task: Any) -> nn.Module:
    from fmstack.train.methods import bottleneck

    return bottleneck.apply(model, spec.adapter_type, spec.adapter_size)


def save(model: nn.Module, folder: Path) -> None:
    from fmstack.train.methods import bottleneck

    bottleneck.save(model, folder)


def load(model: nn.Module, folder: Path) -> nn.Module:
    from fmstack.train.methods import bottleneck

    return bottleneck.load(model, folder)


def merge(model: nn.Module) -> nn.Module:
    raise Unsupported(
        "bottleneck adapters cannot be merged into the base weights (they add a non-linear layer); "
        "serve the adapter on its base, or train with --method lora/ia3 to get a mergeable adapter"
    )
