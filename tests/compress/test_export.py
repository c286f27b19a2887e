"""fp32 ONNX must compute what torch computes, on shapes other than the ones it was traced with."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from transformers import BertModel

from fmstack.compress.export import INPUTS, export_onnx
from fmstack.compress.optimize import optimize_graph
from fmstack.compress.runners import OnnxRunner, TorchRunner, tokenize
from fmstack.compress.source import load_folder
from fmstack.servable import ServableModel
from fmstack.train.pooled import PooledClassifierConfig, PooledEncoderForSequenceClassification
from tests.compress.conftest import LABELS, save_tokenizer, texts, tiny_config

TASKS = {"classification": "logits", "embedding": "last_hidden_state"}


def _descriptor(task: str) -> ServableModel:
    return ServableModel(format="onnx", task=task, output=TASKS[task])  # type: ignore[arg-type]


@pytest.mark.parametrize("task", list(TASKS))
def test_graph_has_dynamic_batch_and_sequence_axes(exported: dict[str, Path], task: str) -> None:
    graph = onnx.load(str(exported[task])).graph
    assert [i.name for i in graph.input] == INPUTS
    for tensor in graph.input:
        dims = tensor.type.tensor_type.shape.dim
        assert all(d.dim_param and not d.dim_value for d in dims), dims
    assert [o.name for o in graph.output] == [TASKS[task]]


@pytest.mark.parametrize("task", list(TASKS))
@pytest.mark.parametrize("optimized", [False, True])
def test_onnx_fp32_matches_torch(
    exported: dict[str, Path],
    classifier_dir: Path,
    encoder_dir: Path,
    tmp_path: Path,
    task: str,
    optimized: bool,
) -> None:
    parent = load_folder(classifier_dir if task == "classification" else encoder_dir, "t/m")
    graph = exported[task]
    if optimized:
        fused = optimize_graph(graph, tmp_path / "opt.onnx", "bert", 4, 32)
        assert fused.get("Attention") == 2  # one fused attention per layer
        graph = tmp_path / "opt.onnx"
    # batch 5 with padding (lengths differ), not the traced (2, 8)
    batch = tokenize(parent.tokenizer, texts(5, seed=3)[0], 64)
    assert batch["attention_mask"].min() == 0
    expected = TorchRunner(parent)(batch)
    got = OnnxRunner(graph, _descriptor(task), threads=1)(batch)
    np.testing.assert_allclose(got, expected, atol=1e-4, rtol=1e-4)
    single = tokenize(parent.tokenizer, ["ball"], 64)  # batch 1, sequence 3
    np.testing.assert_allclose(
        OnnxRunner(graph, _descriptor(task), threads=1)(single),
        TorchRunner(parent)(single),
        atol=1e-4,
        rtol=1e-4,
    )


def test_export_does_not_change_the_parent_attention(classifier_dir: Path, tmp_path: Path) -> None:
    from fmstack.compress.export import export_onnx

    parent = load_folder(classifier_dir, "t/cls")
    before = parent.model.config._attn_implementation
    export_onnx(parent, tmp_path / "m.onnx")
    assert parent.model.config._attn_implementation == before


def test_a_cosine_head_is_computed_in_the_graph(tmp_path: Path) -> None:
    save_tokenizer(tmp_path)
    torch.manual_seed(0)
    encoder = BertModel(tiny_config(), add_pooling_layer=False)
    config = PooledClassifierConfig.wrapping(encoder.config, classifier_head="cosine", num_labels=len(LABELS))
    PooledEncoderForSequenceClassification(config, encoder).eval().save_pretrained(tmp_path)
    parent = load_folder(tmp_path, "t/cosine")
    graph = export_onnx(parent, tmp_path / "cosine.onnx")
    batch = tokenize(parent.tokenizer, texts(5, seed=3)[0], 64)
    expected = TorchRunner(parent)(batch)
    assert np.abs(expected).max() <= 20.0  # scale x cosine
    got = OnnxRunner(graph, _descriptor("classification"), threads=1)(batch)
    np.testing.assert_allclose(got, expected, atol=1e-4, rtol=1e-4)
