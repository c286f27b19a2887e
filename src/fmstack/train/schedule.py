"""Learning-rate schedules: linear warmup, then linear or cosine decay to zero (or constant)."""

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
