from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from fmstack.compress.prune import attention_shape, prune_ffn, prune_heads, prune_magnitude
from fmstack.compress.runners import TorchRunner, tokenize
from fmstack.compress.source import load_folder
from fmstack.errors import Unsupported
from tests.compress.conftest import texts


def _params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def test_heads_are_really_removed(classifier_dir: Path) -> None:
    parent = load_folder(classifier_dir, "t/cls")
    before = _params(parent.model)
    facts = prune_heads(parent.model, 0.5)
    assert facts == {"method": "heads", "heads_before": 4, "heads_after": 2}
    assert attention_shape(parent.model) == (2, 16)
    layer = parent.model.bert.encoder.layer[0]
    assert layer.attention.self.query.weight.shape == (16, 32)
    assert layer.attention.output.dense.weight.shape == (32, 16)
    assert _params(parent.model) < before
    out = TorchRunner(parent)(tokenize(parent.tokenizer, texts(3)[0], 64))  # still runs
    assert out.shape == (3, 3) and np.isfinite(out).all()


def test_pruning_zero_heads_keeps_the_model_identical(classifier_dir: Path) -> None:
    parent = load_folder(classifier_dir, "t/cls")
    batch = tokenize(parent.tokenizer, texts(4)[0], 64)
    expected = TorchRunner(parent)(batch)
    prune_heads(parent.model, 0.0)  # keeps every head, in order: same function
    np.testing.assert_allclose(TorchRunner(parent)(batch), expected, atol=1e-6)


def test_ffn_neurons_are_really_removed(encoder_dir: Path) -> None:
    parent = load_folder(encoder_dir, "t/enc")
    facts = prune_ffn(parent.model, 0.75)
    assert facts == {"method": "ffn", "ffn_before": 64, "ffn_after": 16}
    assert parent.model.encoder.layer[1].intermediate.dense.weight.shape == (16, 32)
    assert parent.model.config.intermediate_size == 16


def test_magnitude_zeroes_the_fraction(encoder_dir: Path) -> None:
    parent = load_folder(encoder_dir, "t/enc")
    facts = prune_magnitude(parent.model, 0.3)
    assert facts["sparsity"] == pytest.approx(0.3, abs=0.01)


def test_structured_pruning_refuses_unknown_architectures() -> None:
    with pytest.raises(Unsupported, match="BERT-like"):
        prune_heads(torch.nn.Linear(2, 2), 0.5)
