"""ONNX Runtime: versions exported by ``fmstack compress`` (an ``fmstack.json`` with ``format: onnx``).

The descriptor says everything needed to run the graph (input names, which output to read, pooling),
so nothing is guessed from the graph itself.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from fmstack.errors import InvalidInput
from fmstack.servable import ServableModel
from fmstack.serve.runtimes.base import RuntimeInfo
from fmstack.serve.runtimes.pooling import l2_normalize, pool, scores
from fmstack.serve.runtimes.tokenizer import TextEncoder

_KNOWN_INPUTS = {"input_ids", "attention_mask", "token_type_ids"}


class OnnxRuntime:
    def __init__(self, folder: Path, descriptor: ServableModel, threads: int | None) -> None:
        import onnxruntime as ort

        weights = folder / descriptor.file
        if not weights.is_file():
            raise InvalidInput(
                f"{folder}: fmstack.json names {descriptor.file!r}, which is not in the version"
            )
        unknown = set(descriptor.inputs) - _KNOWN_INPUTS
        if unknown:
            raise InvalidInput(
                f"{folder}: fmstack.json lists graph inputs {sorted(unknown)} that the server cannot fill; "
                f"known inputs: {sorted(_KNOWN_INPUTS)}"
            )
        # Each batch runs on one thread, and ``threads`` batches run at once (the server gives each its
        # own worker thread). Splitting every operator of one batch across threads instead makes the
        # threads meet at a barrier after each of the graph's hundreds of operators; whenever the event
        # loop or another process holds a core, the others wait there, and the server's CPU per request
        # rose by about 10 %.
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self._session = ort.InferenceSession(str(weights), options, providers=["CPUExecutionProvider"])
        self._descriptor = descriptor
        self._encoder = TextEncoder.from_folder(folder)
        embedding = descriptor.task == "embedding"
        if not embedding and not descriptor.labels:
            raise InvalidInput(
                f"{folder}: a classification descriptor needs its labels (fmstack.json 'labels')"
            )
        dimensions = 0
        if embedding:
            shape = next((o.shape for o in self._session.get_outputs() if o.name == descriptor.output), None)
            if shape is None:
                raise InvalidInput(
                    f"{folder}: the graph has no output {descriptor.output!r} (fmstack.json 'output')"
                )
            dimensions = shape[-1] if isinstance(shape[-1], int) else 0
        self._info = RuntimeInfo(
            task=descriptor.task,
            platform="onnxruntime",
            max_length=descriptor.max_length,
            labels=tuple(descriptor.labels),
            multi_label=descriptor.multi_label,
            dimensions=dimensions,
            batches=threads or os.cpu_count() or 1,
        )

    @property
    def info(self) -> RuntimeInfo:
        return self._info

    def encode(self, texts: Sequence[str]) -> list[list[int]]:
        return self._encoder.encode(texts)

    def forward(self, batch: Sequence[Sequence[int]]) -> NDArray[np.float32]:
        ids, mask = self._encoder.pad(batch)  # (batch, seq) each
        available = {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
        feeds = {name: available[name] for name in self._descriptor.inputs}
        (out,) = self._session.run([self._descriptor.output], feeds)
        if self._descriptor.task == "classification":
            return scores(np.asarray(out), self._descriptor.multi_label)  # (batch, labels)
        vectors = pool(np.asarray(out, dtype=np.float32), mask, self._descriptor.pooling)  # (batch, hidden)
        return l2_normalize(vectors) if self._descriptor.normalize else vectors

    def close(self) -> None:
        del self._session


def load(folder: Path, descriptor: ServableModel | None, threads: int | None) -> OnnxRuntime:
    if descriptor is None or descriptor.format != "onnx":
        raise InvalidInput(f"{folder}: the ONNX runtime needs an fmstack.json with format 'onnx'")
    return OnnxRuntime(folder, descriptor, threads)
