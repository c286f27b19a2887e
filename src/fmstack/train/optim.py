"""The optimizer's parameter groups: no weight decay on biases and norms; optionally a learning rate of
its own for the task head (a fresh, randomly initialised classifier can take far larger steps than the
pretrained encoder under it) and layer-wise decay of the encoder's rates (lower blocks, which hold the
most general features, move least). Pure over ``(name, parameter)`` pairs, so tests need no model."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

import torch
from torch import nn

from fmstack.train.methods.heads import HEAD_NAMES

# Transformer block i: BERT's ``encoder.layer.i.``, Llama-style ``layers.i.``, GPT-2's ``h.i.``.
_BLOCK = re.compile(r"(?:^|\.)(?:layer|layers|h)\.(\d+)\.")
_EMBEDDINGS = {"embeddings", "wte", "wpe"}


def is_head(name: str) -> bool:
    """Whether a parameter belongs to the task head: ``classifier.weight``, or under PEFT
    ``base_model.model.classifier.modules_to_save.default.weight``."""
    return any(part in HEAD_NAMES for part in name.split("."))


def depth(name: str, blocks: int) -> int:
    """0 for the embeddings, i + 1 for transformer block i, ``blocks + 1`` above them (pooler, final
    norm, head)."""
    found = _BLOCK.search(name)
    if found is not None:
        return int(found.group(1)) + 1
    if _EMBEDDINGS.intersection(name.split(".")):
        return 0
    return blocks + 1


def _no_decay(name: str, param: nn.Parameter) -> bool:
    return param.dim() < 2 or "LayerNorm" in name or "norm" in name


def param_groups(
    named: Iterable[tuple[str, nn.Parameter]],
    lr: float,
    weight_decay: float,
    head_lr: float | None = None,
    layer_decay: float | None = None,
) -> list[dict[str, Any]]:
    """AdamW groups of the trainable parameters, each with its ``lr``: the encoder's groups first, top
    block first (the loop reports the first group's rate, the peak), then the head's. With
    ``layer_decay`` a block trains at ``layer_decay`` times the rate of the block above it."""
    named = list(named)
    blocks = 1 + max((int(m.group(1)) for n, _ in named if (m := _BLOCK.search(n))), default=-1)
    buckets: dict[tuple[bool, int, bool], list[nn.Parameter]] = {}
    for name, param in named:
        if not param.requires_grad:
            continue
        head = head_lr is not None and is_head(name)
        below_top = 0 if head or layer_decay is None else blocks + 1 - depth(name, blocks)
        buckets.setdefault((head, below_top, _no_decay(name, param)), []).append(param)
    groups: list[dict[str, Any]] = []
    for head, below_top, no_decay in sorted(buckets):
        rate = head_lr if head and head_lr is not None else lr * (layer_decay or 1.0) ** below_top
        groups.append(
            {
                "params": buckets[(head, below_top, no_decay)],
                "weight_decay": 0.0 if no_decay else weight_decay,
                "lr": rate,
            }
        )
    return groups


def make_optimizer(
    named: Iterable[tuple[str, nn.Parameter]],
    lr: float,
    weight_decay: float,
    head_lr: float | None = None,
    layer_decay: float | None = None,
) -> torch.optim.Optimizer:
    return torch.optim.AdamW(param_groups(named, lr, weight_decay, head_lr, layer_decay), lr=lr)
