"""The model-FLOPs-utilisation estimate: model FLOPs per token x tokens/s / peak FLOP/s."""

from __future__ import annotations

import time
from functools import cache

import torch


def flops_per_token(params: int, method: str) -> float:
    """Training FLOPs per token: 2N forward + 4N backward when every weight trains (6N); about 4N
    when the base is frozen (activation gradients only). The probe trains on cached features: ~0."""
    if method == "probe":
        return 0.0
    return (6.0 if method == "full" else 4.0) * params


@cache
def peak_flops(device: torch.device) -> float:
    """Measured fp32 matmul FLOP/s on this device (a short benchmark, once per process)."""
    n = 1024
    a = torch.randn(n, n, device=device)
    b = torch.randn(n, n, device=device)
    a @ b  # warm-up
    reps, started = 8, time.perf_counter()
    for _ in range(reps):
        a @ b
    if device.type == "cuda":
        torch.cuda.synchronize()
    return 2 * n**3 * reps / (time.perf_counter() - started)
