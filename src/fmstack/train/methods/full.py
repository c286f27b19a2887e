"""Full fine-tuning (and pretraining): every weight trains; the output is a plain model version."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from fmstack.errors import Unsupported
from fmstack.train.methods import shared

if TYPE_CHECKING:
    from torch import nn


name = "full"
is_adapter = False
adapter_format = None
tasks = ("classification", "embedding", "mlm", "clm")
default_lr = 5e-5
# Classification: the small steps that suit a pretrained encoder leave a freshly initialised head
# undertrained, so the head gets a rate of its own (bench/README.md, "Toward 94%: head learning rate").
default_head_lr = 3e-3
options: tuple[str, ...] = ()
rules = shared.no_rules
training_view = shared.as_given


def flops_per_token(weights: float, trainable: int, attention: float) -> float:
    """6N + attention: forward 2N, backward twice that (activation and weight gradients)."""
    return 6.0 * weights + attention


def apply(model: nn.Module, spec: Any, task: Any) -> nn.Module:
    model.requires_grad_(True)
    return model


def save(model: nn.Module, folder: Path) -> None:
    raise Unsupported("full fine-tuning writes a model version, not adapter files")


def load(model: nn.Module, folder: Path) -> nn.Module:
    return model


def merge(model: nn.Module) -> nn.Module:
    return model
