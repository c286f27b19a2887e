"""The optimizer's parameter groups: no weight decay on biases and norms, and optionally a learning rate
of its own for the task head (a fresh, randomly initialised classifier can take far larger steps than
the pretrained encoder under it). Pure over ``(name, parameter)`` pairs, so tests need no model."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch
from torch import nn

from fmstack.train.methods.heads import HEAD_NAMES


def is_head(name: str) -> bool:
    """Whether a parameter belongs to the task head: ``classifier.weight``, or under PEFT
    ``base_model.model.classifier.modules_to_save.default.weight``."""
    return any(part in HEAD_NAMES for part in name.split("."))


def _no_decay(name: str, param: nn.Parameter) -> bool:
    return param.dim() < 2 or "LayerNorm" in name or "norm" in name


def param_groups(
    named: Iterable[tuple[str, nn.Parameter]], weight_decay: float, head_lr: float | None
) -> list[dict[str, Any]]:
    """AdamW groups of the trainable parameters; the encoder's groups come first (the loop reports
    the first group's learning rate). Head groups carry ``lr`` only when ``head_lr`` is given."""
    buckets: dict[tuple[bool, bool], list[nn.Parameter]] = {}
    for name, param in named:
        if param.requires_grad:
            head = head_lr is not None and is_head(name)
            buckets.setdefault((head, _no_decay(name, param)), []).append(param)
    groups: list[dict[str, Any]] = []
    for head in (False, True):
        for no_decay in (False, True):
            params = buckets.get((head, no_decay))
            if params:
                group: dict[str, Any] = {"params": params, "weight_decay": 0.0 if no_decay else weight_decay}
                if head:
                    group["lr"] = head_lr
                groups.append(group)
    return groups


def make_optimizer(
    named: Iterable[tuple[str, nn.Parameter]], lr: float, weight_decay: float, head_lr: float | None
) -> torch.optim.Optimizer:
    return torch.optim.AdamW(param_groups(named, weight_decay, head_lr), lr=lr)
