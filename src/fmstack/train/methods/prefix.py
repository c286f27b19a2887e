"""Prefix tuning / P-tuning v2 for encoder self-attention, with the task head; its layers are in
``prefix_attention.py``. Not mergeable: the prefixes are extra attention keys and values."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from fmstack.errors import Unsupported
from fmstack.train.methods import shared

if TYPE_CHECKING:
    from torch import nn


name = "prefix"
is_adapter = True
adapter_format = "fmstack"
# Implemented for encoder self-attention (``*SelfAttention`` modules with query/key/value) and
# offered for the tasks that produce an encoder's output, not for language modelling.
tasks = ("classification", "embedding")
default_lr = 1e-2
default_head_lr = None
options = ("prefix_length",)
rules = shared.no_rules
flops_per_token = shared.frozen_base_flops
training_view = shared.as_given


def apply(model: nn.Module, spec: Any, task: Any) -> nn.Module:
    from fmstack.train.methods import prefix_attention

    return prefix_attention.apply(model, spec.prefix_length)


def save(model: nn.Module, folder: Path) -> None:
    from fmstack.train.methods import prefix_attention

    prefix_attention.save(model, folder)


def load(model: nn.Module, folder: Path) -> nn.Module:
    from fmstack.train.methods import prefix_attention

    return prefix_attention.load(model, folder)


def merge(model: nn.Module) -> nn.Module:
    raise Unsupported(
        "prefix-tuned models cannot be merged into the base weights (the prefixes are extra attention "
        "keys/values); serve the adapter on its base, or train with --method lora/ia3 to merge"
    )
