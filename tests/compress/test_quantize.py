from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest

from fmstack.compress.evaluate import cosine_points
from fmstack.compress.optimize import optimize_graph
from fmstack.compress.registry import QUANTIZERS
from fmstack.compress.runners import OnnxRunner, TorchRunner, tokenize
from fmstack.compress.source import load_folder
from fmstack.servable import ServableModel
from tests.compress.conftest import texts


@pytest.mark.parametrize("name", list(QUANTIZERS))
def test_int8_is_close_to_fp32_and_smaller(
    name: str, exported: dict[str, Path], encoder_dir: Path, tmp_path: Path
) -> None:
    parent = load_folder(encoder_dir, "t/enc")
    graph = tmp_path / "opt.onnx"
    optimize_graph(exported["embedding"], graph, "bert", 4, 32)
    calibration = [tokenize(parent.tokenizer, texts(8, seed=s)[0], 64) for s in range(4)]
    root_level = logging.getLogger().level
    QUANTIZERS[name](graph, tmp_path / "q.onnx", True, calibration)
    assert logging.getLogger().level == root_level  # the quantizer's quiet spell is scoped to the call
    descriptor = ServableModel(format="onnx", task="embedding", output="last_hidden_state")
    batch = tokenize(parent.tokenizer, texts(16, seed=5)[0], 64)
    got = OnnxRunner(tmp_path / "q.onnx", descriptor, threads=1)(batch)
    expected = TorchRunner(parent)(batch)
    assert cosine_points(got, expected) > 99.0
    assert not np.allclose(got, expected, atol=1e-6)  # really quantised, not a copy of fp32
    weights = (tmp_path / "q.onnx").stat().st_size
    assert weights < graph.stat().st_size
