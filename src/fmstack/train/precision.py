"""Device and mixed-precision choice. fp16 autocast is silently ignored on CPU, so it is refused there."""

from __future__ import annotations

import torch

from fmstack.errors import Unsupported


def pick_device(requested: str) -> str:
    """``auto`` -> cuda, then mps, then cpu; an explicit device must exist."""
    if requested == "auto":
        if torch.cuda.is_available():
            return "cuda"
        if torch.backends.mps.is_available():
            return "mps"
        return "cpu"
    if requested == "cuda" and not torch.cuda.is_available():
        raise Unsupported("device 'cuda' was asked for but no CUDA GPU is visible; use --device auto or cpu")
    if requested == "mps" and not torch.backends.mps.is_available():
        raise Unsupported("device 'mps' was asked for but this machine has no Apple GPU; use --device auto")
    return requested


def check_precision(precision: str, device: str) -> str:
    if precision == "fp16" and device == "cpu":
        raise Unsupported(
            "precision fp16 is not supported on CPU: PyTorch ignores fp16 autocast there, so the run "
            "would silently train in fp32. Use --precision bf16 (or no) on CPU, or train on a GPU."
        )
    if precision == "bf16" and device == "cuda" and not torch.cuda.is_bf16_supported():
        raise Unsupported("this GPU has no bf16 support; use --precision fp16 or no")
    return precision
