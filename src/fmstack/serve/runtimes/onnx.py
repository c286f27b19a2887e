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


# Batches computed at once: two keep both cores of a small machine busy with a batch each, and let one
# batch form while the other computes; more would cut the queue into ever smaller batches.
_MAX_BATCHES = 2


def split_threads(threads: int) -> tuple[int, int]:
    """(batches computed at once, threads per batch) for ``threads`` compute threads.

    Batches side by side before threads within a batch: a batch split across threads makes them meet
    at a barrier after each of the graph's hundreds of operators, and whenever the event loop or
    another process holds a core, the others wait there. On 2 cores, two one-thread batches cost the
    server less CPU per request than one batch on two threads (bench/README.md, serving).
    """
    batches = min(threads, _MAX_BATCHES)
    return batches, max(1, threads // batches)


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
        batches, per_batch = split_threads(threads or os.cpu_count() or 1)
        options = ort.SessionOptions()
        options.intra_op_num_threads = per_batch
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        # Idle intra-op threads spin by default, burning the cores that the event loop (parsing
        # requests, tokenising) needs between two batches; a server interleaves both, so no spinning.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
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
        self._info = RuntimeInfo.of(descriptor, "onnxruntime", dimensions, batches=batches)

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
