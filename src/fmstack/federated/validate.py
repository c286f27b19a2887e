"""Checks on one client update before it may count: the same tensors as the global adapter (names,
shapes), finite values, and an L2 norm of the delta within the federation's bound. Pure: the
coordinator logs the reason and goes on without the client."""

from __future__ import annotations

import math
from collections.abc import Mapping

import torch


def l2_norm(delta: Mapping[str, torch.Tensor]) -> float:
    """The L2 norm of all tensors together, as one flat vector."""
    return math.sqrt(sum(float(t.double().pow(2).sum()) for t in delta.values()))


def problem(
    local: Mapping[str, torch.Tensor], global_: Mapping[str, torch.Tensor], max_norm: float | None
) -> tuple[str | None, float | None]:
    """``(reason, norm)``: reason is None for a good update; norm is None when it could not be computed."""
    missing, extra = sorted(set(global_) - set(local)), sorted(set(local) - set(global_))
    if missing or extra:
        shown = ", ".join([f"missing {k}" for k in missing[:3]] + [f"unexpected {k}" for k in extra[:3]])
        return f"wrong tensors: {shown} (an adapter of another method, rank or base?)", None
    for name, tensor in local.items():
        if tuple(tensor.shape) != tuple(global_[name].shape):
            return (
                f"wrong shape for {name}: {tuple(tensor.shape)}, the global adapter has "
                f"{tuple(global_[name].shape)}",
                None,
            )
        if not tensor.is_floating_point():
            return f"{name} is {tensor.dtype}, not floating point", None
        if not bool(torch.isfinite(tensor).all()):
            return f"{name} holds NaN or infinite values", None
    norm = l2_norm({k: local[k].double() - global_[k].double() for k in global_})
    if max_norm is not None and norm > max_norm:
        return f"update norm {norm:.4g} is above the federation's bound {max_norm:g}", norm
    return None, norm
