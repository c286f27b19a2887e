"""Learning-rate schedules: linear warmup, then linear or cosine decay to zero (or constant).

Why not ``transformers.get_scheduler``: its warmup multiplies the peak rate by ``step / warmup``,
so the first optimizer step runs at learning rate 0 (a wasted step: the weights do not move, yet
the batch is spent and AdamW's moments take its gradient in), and the peak is reached one step after
warmup ends. Here step ``s`` of the warmup runs at ``(s + 1) / warmup``: every step trains, and the
peak is the last warmup step. After warmup the two are the same function (linear, cosine with half
a cycle, and constant, which is its ``constant_with_warmup``); ``tests/train/test_schedule.py``
checks both statements against transformers, so a change on either side shows.
"""

from __future__ import annotations

import math

import torch
from torch.optim.lr_scheduler import LambdaLR


def lr_factor(step: int, total: int, warmup: int, kind: str) -> float:
    """The multiplier of the peak learning rate at optimizer step ``step`` (0-based)."""
    if warmup > 0 and step < warmup:
        return (step + 1) / warmup
    if kind == "constant":
        return 1.0
    progress = (step - warmup) / max(1, total - warmup)
    progress = min(max(progress, 0.0), 1.0)
    if kind == "cosine":
        return 0.5 * (1.0 + math.cos(math.pi * progress))
    return 1.0 - progress


def make_scheduler(optimizer: torch.optim.Optimizer, total: int, warmup: int, kind: str) -> LambdaLR:
    return LambdaLR(optimizer, lambda step: lr_factor(step, total, warmup, kind))
