"""Parents that are adapters: merged through fmstack.train before export."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from fmstack.compress import CompressSpec, compress
from fmstack.compress.runners import OnnxRunner, TorchRunner, tokenize
from fmstack.compress.source import load_parent
from fmstack.hub import Hub
from fmstack.train.run import train
from fmstack.train.spec import TrainSpec
from tests.compress.conftest import build_dataset, texts


def test_lora_adapter_is_merged_then_compressed(hub: Hub, encoder: str, tmp_path: Path) -> None:
    data = hub.push("acme/topics", build_dataset(tmp_path / "d", splits=("train", "test")), "dataset").ref
    spec = TrainSpec(
        task="classification", method="lora", base=encoder, data=data, max_steps=4, batch_size=16
    )
    adapter = train(hub, spec).output.ref
    assert hub.resolve(adapter).kind == "adapter"

    parent = load_parent(hub, adapter)
    assert parent.merged_from is not None and parent.merged_from.startswith("lora adapter on " + encoder)
    assert "lora" not in type(parent.model).__name__.lower()  # a plain transformers model, not a PeftModel

    result = compress(hub, adapter, CompressSpec(eval_data=data, latency_runs=1, threads=1))
    assert result.version is not None and result.report.steps[0] == "merge adapters"
    assert adapter in hub.info(result.version.ref).inputs
    assert result.report.fused_ops.get("Attention") == 2  # mean-pooled head: attention still fuses
    # the exported graph computes what the merged torch model computes
    batch = tokenize(parent.tokenizer, texts(4, seed=9)[0], 64)
    from fmstack.servable import read_descriptor

    folder = hub.checkout(result.version.ref)
    descriptor = read_descriptor(folder)
    assert descriptor is not None and descriptor.labels == parent.labels
    got = OnnxRunner(folder / "model.onnx", descriptor, threads=1)(batch)
    np.testing.assert_allclose(got, TorchRunner(parent)(batch), atol=1e-4, rtol=1e-4)
