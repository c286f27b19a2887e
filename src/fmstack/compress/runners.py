"""The runners compression measures with: a parent (torch) or a child (ONNX Runtime) run on tokenised
texts, the same way for both.

Both runners return what a user of the model sees: logits (batch, labels) for a classifier, pooled
and (optionally) L2-normalised embeddings (batch, hidden) for an embedding model. That is what the
report compares, and what the server must reproduce from ``fmstack.json``. These are measuring
instruments, not the serving runtimes (``fmstack.serve.runtimes``: batching, adapters, HTTP shapes).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch

from fmstack.compress.source import Parent
from fmstack.servable import ServableModel

Batch = dict[str, np.ndarray]


class Runner(Protocol):
    def __call__(self, batch: Batch) -> np.ndarray: ...


def tokenize(tokenizer: Any, texts: list[str], max_length: int) -> Batch:
    """Pad to the longest text of the batch (not to max_length): the shape real traffic has."""
    enc = tokenizer(texts, padding=True, truncation=True, max_length=max_length, return_tensors="np")
    return {
        "input_ids": enc["input_ids"].astype(np.int64),
        "attention_mask": enc["attention_mask"].astype(np.int64),
    }


def pool(hidden: np.ndarray, mask: np.ndarray, pooling: str, normalize: bool) -> np.ndarray:
    """(batch, seq, hidden) token states -> (batch, hidden) text vectors."""
    if pooling == "cls":
        vectors = hidden[:, 0]
    else:
        weights = mask[..., None].astype(hidden.dtype)  # (batch, seq, 1)
        vectors = (hidden * weights).sum(axis=1) / np.clip(weights.sum(axis=1), 1e-9, None)
    if normalize:
        vectors = vectors / np.clip(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12, None)
    return np.asarray(vectors, dtype=np.float32)


class TorchRunner:
    def __init__(self, parent: Parent) -> None:
        self.parent = parent

    def __call__(self, batch: Batch) -> np.ndarray:
        ids = torch.from_numpy(batch["input_ids"])
        mask = torch.from_numpy(batch["attention_mask"])
        with torch.inference_mode():
            out = self.parent.model(input_ids=ids, attention_mask=mask)
        if self.parent.task == "classification":
            return np.asarray(out.logits.float().numpy(), dtype=np.float32)
        hidden = out.last_hidden_state.float().numpy()
        return pool(hidden, batch["attention_mask"], self.parent.pooling, self.parent.normalize)


class OnnxRunner:
    def __init__(self, path: Path, descriptor: ServableModel, threads: int = 0) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        if threads:
            options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self.descriptor = descriptor

    def graph_output(self, batch: Batch) -> np.ndarray:
        """The graph's own output: logits (batch, labels) or token states (batch, seq, hidden)."""
        feed = {name: batch[name] for name in self.descriptor.inputs}
        (out,) = self.session.run([self.descriptor.output], feed)
        return np.asarray(out, dtype=np.float32)

    def __call__(self, batch: Batch) -> np.ndarray:
        out = self.graph_output(batch)
        if self.descriptor.task == "classification":
            return out
        return pool(out, batch["attention_mask"], self.descriptor.pooling, self.descriptor.normalize)
