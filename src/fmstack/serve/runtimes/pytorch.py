"""PyTorch: any Hugging Face model folder.

Without an ``fmstack.json`` the task comes from ``config.json``: a ``*ForSequenceClassification``
architecture with ``id2label`` is a classifier; anything else is an encoder served as embeddings with
mean pooling and L2 normalisation (the sentence-transformers recipe of all-MiniLM-L6-v2).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from fmstack.errors import InvalidInput
from fmstack.servable import ServableModel
from fmstack.serve.runtimes.base import RuntimeInfo, Task
from fmstack.serve.runtimes.pooling import l2_normalize, pool, scores
from fmstack.serve.runtimes.tokenizer import TextEncoder

if TYPE_CHECKING:  # torch is imported on first load, so an ONNX-only server never pays for it
    import torch


def read_config(folder: Path) -> dict[str, Any]:
    path = folder / "config.json"
    if not path.is_file():
        raise InvalidInput(
            f"{folder}: not a servable model: no fmstack.json and no config.json "
            "(serve an ONNX export from `fmstack compress` or a Hugging Face model folder)"
        )
    data = json.loads(path.read_text())
    if not isinstance(data, dict):
        raise InvalidInput(f"{path}: expected a JSON object")
    return data


def infer_descriptor(config: dict[str, Any], sentence_config: dict[str, Any] | None = None) -> ServableModel:
    """The descriptor a plain Hugging Face folder implies, from its config (and, for a
    sentence-transformers folder, ``sentence_bert_config.json``'s ``max_seq_length``)."""
    max_length = int(config.get("max_position_embeddings") or 512)
    if sentence_config and isinstance(sentence_config.get("max_seq_length"), int):
        max_length = min(max_length, sentence_config["max_seq_length"])
    archs = [str(a) for a in config.get("architectures") or []]
    id2label = config.get("id2label") or {}
    task: Task = "embedding"
    labels: list[str] = []
    if id2label and any(a.endswith("ForSequenceClassification") for a in archs):
        task = "classification"
        labels = [str(id2label[k]) for k in sorted(id2label, key=int)]
    return ServableModel(
        format="pytorch",
        task=task,
        labels=labels,
        multi_label=config.get("problem_type") == "multi_label_classification",
        max_length=max_length,
        output="logits" if task == "classification" else "last_hidden_state",
    )


class TorchRuntime:
    def __init__(
        self, model: torch.nn.Module, encoder: TextEncoder, descriptor: ServableModel, dimensions: int
    ) -> None:
        self._model = model.eval()
        self._encoder = encoder
        self._descriptor = descriptor
        self._info = RuntimeInfo.of(descriptor, "pytorch", dimensions)

    @property
    def info(self) -> RuntimeInfo:
        return self._info

    def encode(self, texts: Sequence[str]) -> list[list[int]]:
        return self._encoder.encode(texts)

    def forward(self, batch: Sequence[Sequence[int]]) -> NDArray[np.float32]:
        return torch_forward(self._model, self._encoder, self._descriptor, batch)

    def close(self) -> None:
        del self._model


def torch_forward(
    model: torch.nn.Module, encoder: TextEncoder, descriptor: ServableModel, batch: Sequence[Sequence[int]]
) -> NDArray[np.float32]:
    """One pass of a transformers model over token ids: (batch, labels) scores or (batch, hidden) vectors."""
    ids, mask = encoder.pad(batch)  # (batch, seq) each
    return answers(raw_outputs(model, ids, mask, descriptor.task), mask, descriptor)


def raw_outputs(
    model: torch.nn.Module,
    ids: NDArray[np.int64],
    mask: NDArray[np.int64],
    task: Task,
    **extra: object,
) -> NDArray[np.float32]:
    """The model's logits (batch, labels) for a classifier, its token states (batch, seq, hidden) for
    an encoder. ``extra`` goes to the forward call (PEFT's ``adapter_names``)."""
    import torch

    with torch.inference_mode():
        out = model(input_ids=torch.from_numpy(ids), attention_mask=torch.from_numpy(mask), **extra)
    tensor = out.logits if task == "classification" else out.last_hidden_state
    raw: NDArray[np.float32] = tensor.float().numpy()
    return raw


def answers(
    raw: NDArray[np.float32], mask: NDArray[np.int64], descriptor: ServableModel
) -> NDArray[np.float32]:
    """``raw_outputs`` -> what the server answers: scores, or pooled (and normalised) vectors."""
    if descriptor.task == "classification":
        return scores(raw, descriptor.multi_label)  # (batch, labels)
    vectors = pool(raw, mask, descriptor.pooling)  # (batch, hidden)
    return l2_normalize(vectors) if descriptor.normalize else vectors


def load_model(folder: Path, task: Task) -> torch.nn.Module:
    import torch
    from transformers import AutoModel, AutoModelForSequenceClassification
    from transformers.utils import logging as hf_logging

    import fmstack.train.pooled  # noqa: F401  (registers fmstack's mean-pooled classifier with transformers)

    hf_logging.disable_progress_bar()  # type: ignore[no-untyped-call]  # a server log is not a terminal

    auto = AutoModelForSequenceClassification if task == "classification" else AutoModel
    try:
        model: torch.nn.Module = auto.from_pretrained(str(folder), dtype=torch.float32)
    except (OSError, ValueError) as exc:
        raise InvalidInput(f"{folder}: cannot load the model with transformers: {exc}") from None
    return model


def load(folder: Path, descriptor: ServableModel | None, threads: int | None) -> TorchRuntime:
    import torch

    if threads:
        torch.set_num_threads(threads)  # process-wide: torch has one intra-op pool
    config = read_config(folder)
    sentence = folder / "sentence_bert_config.json"
    descriptor = descriptor or infer_descriptor(
        config, json.loads(sentence.read_text()) if sentence.is_file() else None
    )
    model = load_model(folder, descriptor.task)
    dimensions = int(config.get("hidden_size") or 0)
    return TorchRuntime(model, TextEncoder.from_folder(folder), descriptor, dimensions)
