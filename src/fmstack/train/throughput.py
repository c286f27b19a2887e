"""The model-FLOPs-utilisation estimate: model FLOPs per token x tokens/s / peak FLOP/s.

Model FLOPs follow the usual accounting (Kaplan et al. 2020; PaLM appendix B): a forward pass costs
2 FLOPs per matmul weight per token, plus the attention scores and their weighted sum (4 x layers x
sequence x hidden). Embedding tables are lookups, not matmuls, so their parameters do not count
(11.7 M of all-MiniLM-L6-v2's 22.6 M). Backward costs twice the forward for the activation
gradients plus, for weights that train, the weight gradients; a frozen base needs only the former.
Must not know the training loop: it is handed counts and a model.
"""

from __future__ import annotations

import logging
from functools import cache
from time import perf_counter

import torch
from torch import nn

from fmstack.train.registry import Method

log = logging.getLogger("fmstack.train")

# Matmul size and repetitions of the peak measurement: the best of several short timings, because a
# busy machine can only make a timing slower, never faster (one timing under load gave MFU 1.79).
PEAK_SIZE = {"cuda": 4096, "cpu": 1024}
PEAK_REPEATS = 10


def matmul_params(model: nn.Module) -> int:
    """Parameters that take part in matmuls: all of them less the embedding tables (lookups)."""
    embedded = sum(p.numel() for m in model.modules() if isinstance(m, nn.Embedding) for p in m.parameters())
    return sum(p.numel() for p in model.parameters()) - embedded


def attention_shape(model: nn.Module) -> tuple[int, int]:
    """(layers, hidden size) of a transformers model's attention, (0, 0) if its config says neither."""
    config = getattr(model, "config", None)
    layers = getattr(config, "num_hidden_layers", None) or getattr(config, "n_layer", None) or 0
    hidden = getattr(config, "hidden_size", None) or getattr(config, "n_embd", None) or 0
    return int(layers), int(hidden)


def flops_per_token(model: nn.Module, trainable: int, method: Method, seq_len: float) -> float:
    """Training FLOPs per (non-padding) token at mean sequence length ``seq_len``.

    The method accounts for its own (``flops_per_token`` of its plugin): full fine-tuning 6N + 12 L s d
    (forward 2N + 4 L s d; backward twice that); a frozen base (LoRA, IA3, adapters, prefix) forward
    2N, activation gradients 2N, weight gradients only for the ``trainable`` parameters (2 per
    weight), attention as in full; the probe, training a head on cached features, 6 x the head's.
    """
    layers, hidden = attention_shape(model)
    attention = 12.0 * layers * seq_len * hidden
    return method.flops_per_token(float(matmul_params(model)), trainable, attention)


def utilisation(per_token: float, tokens_per_s: float, peak: float | None) -> float | None:
    """Model FLOPs / peak FLOPs, at most 1: a higher estimate means the peak was measured too low."""
    if not peak or not tokens_per_s or not per_token:
        return None
    mfu = per_token * tokens_per_s / peak
    if mfu > 1.0:
        log.warning(
            "MFU estimate %.2f is above 1: the measured peak (%.3g FLOP/s) is too low for this device; "
            "reported as 1.0. Set peak_flops in the train spec to the device's peak.",
            mfu,
            peak,
        )
        return 1.0
    return mfu


@cache
def peak_flops(device: torch.device, dtype: torch.dtype = torch.float32) -> float:
    """Measured matmul FLOP/s on this device: the fastest of ``PEAK_REPEATS`` square matmuls (once
    per process)."""
    n = PEAK_SIZE["cuda" if device.type == "cuda" else "cpu"]
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    a @ b  # warm-up: first-call kernel selection and allocation
    best = float("inf")
    for _ in range(PEAK_REPEATS):
        _sync(device)
        started = perf_counter()
        a @ b
        _sync(device)
        best = min(best, perf_counter() - started)
    return 2 * n**3 / best


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
