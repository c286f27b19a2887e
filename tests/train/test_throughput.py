"""The MFU estimate: FLOPs per token without embedding tables, the frozen-base split, a robust peak."""

from __future__ import annotations

import itertools
import logging

import pytest
import torch
from transformers import BertConfig, BertModel

from fmstack.train import throughput
from fmstack.train.methods import full, lora, probe
from fmstack.train.throughput import flops_per_token, matmul_params, utilisation


def bert(vocab: int) -> BertModel:
    config = BertConfig(
        vocab_size=vocab, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64
    )
    return BertModel(config)


def test_embedding_tables_are_not_counted_as_matmul_flops() -> None:
    small, large = bert(100), bert(30_000)  # the same layers; one lookup table is 300x larger
    assert matmul_params(small) == matmul_params(large)
    embeddings = sum(p.numel() for p in small.embeddings.parameters())
    layer_norm = sum(p.numel() for p in small.embeddings.LayerNorm.parameters())
    assert matmul_params(small) == sum(p.numel() for p in small.parameters()) - embeddings + layer_norm
    # 6N plus attention's sequence term 12 x layers x seq x hidden
    n = matmul_params(small)
    assert flops_per_token(large, n, full, 16.0) == 6 * n + 12 * 2 * 16 * 32


def test_frozen_base_methods_skip_the_base_weight_gradients() -> None:
    model = bert(100)
    n, attention = matmul_params(model), 12 * 2 * 10 * 32
    assert flops_per_token(model, 500, lora, 10.0) == 4 * n + 2 * 500 + attention
    assert flops_per_token(model, 500, lora, 10.0) < flops_per_token(model, n, full, 10.0)
    assert flops_per_token(model, 500, probe, 10.0) == 6 * 500  # head on cached features


def test_utilisation_is_never_above_one(caplog: pytest.LogCaptureFixture) -> None:
    assert utilisation(1e6, 100.0, 1e9) == pytest.approx(0.1)
    with caplog.at_level(logging.WARNING, logger="fmstack.train"):
        assert utilisation(1e6, 1790.0, 1e9) == 1.0  # a peak measured too low
    assert "peak_flops" in caplog.text
    assert utilisation(1e6, 0.0, 1e9) is None and utilisation(0.0, 10.0, 1e9) is None


def test_peak_is_the_fastest_timing_so_other_load_cannot_inflate_mfu(monkeypatch: pytest.MonkeyPatch) -> None:
    # Fake clock: each matmul takes 1 s (a busy machine) except one that takes 0.01 s.
    durations = [1.0] * (throughput.PEAK_REPEATS - 1) + [0.01]
    ticks = itertools.accumulate(d for duration in durations for d in (0.0, duration))
    monkeypatch.setattr(throughput, "perf_counter", lambda: next(ticks))
    n = throughput.PEAK_SIZE["cpu"]
    peak = throughput.peak_flops.__wrapped__(torch.device("cpu"))
    assert peak == pytest.approx(2 * n**3 / 0.01)
