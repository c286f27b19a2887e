"""``Model(path)``: an ONNX bundle (or any ONNX version folder of fmstack) answering texts, torch-free.

``predict`` returns labels and scores, ``embed`` vectors; both run the graph the way ``fmstack serve``'s
ONNX runtime does (same session options, tokenisation, pooling, softmax), so the answers are equal.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from fmstack_edge.descriptor import Descriptor, read_descriptor
from fmstack_edge.errors import BadBundle, BadInput
from fmstack_edge.outputs import l2_normalize, pool, scores
from fmstack_edge.text import TextEncoder


@dataclass(frozen=True)
class Prediction:
    label: str
    scores: dict[str, float]


class Model:
    """``optimized``: a file for the graph as ONNX Runtime optimises it on this machine. When it exists
    it is loaded as is (no optimisation pass: a restart's session takes a fraction of the time);
    otherwise the graph is optimised and the result saved there. The agent keeps one per slot. Such a
    file is specific to the hardware and ONNX Runtime version that wrote it (ONNX Runtime says so), so
    one that does not load is rebuilt from the bundle's graph."""

    def __init__(self, path: str | Path, threads: int | None = None, optimized: Path | None = None) -> None:
        self.path = Path(path)
        self.descriptor: Descriptor = read_descriptor(self.path)
        weights = self.path / self.descriptor.file
        if not weights.is_file():
            raise BadBundle(f"{self.path}: fmstack.json names {self.descriptor.file!r}, which is not there")
        self._session = _session(weights, threads or min(os.cpu_count() or 1, 4), optimized)
        self._encoder = TextEncoder.from_folder(self.path, self.descriptor.max_length)
        if self.descriptor.output not in {o.name for o in self._session.get_outputs()}:
            raise BadBundle(f"{weights}: the graph has no output {self.descriptor.output!r} (fmstack.json)")

    @property
    def task(self) -> str:
        return self.descriptor.task

    @property
    def labels(self) -> tuple[str, ...]:
        return self.descriptor.labels

    def encode(self, texts: Sequence[str], truncate: bool = False) -> list[list[int]]:
        return self._encoder.encode(texts, truncate)

    def forward(self, ids: Sequence[Sequence[int]]) -> NDArray[np.float32]:
        """Token ids -> (batch, labels) scores or (batch, dimensions) vectors."""
        input_ids, mask = self._encoder.pad(ids)  # (batch, seq) each
        available = {
            "input_ids": input_ids,
            "attention_mask": mask,
            "token_type_ids": np.zeros_like(input_ids),
        }
        feeds = {name: available[name] for name in self.descriptor.inputs}
        (out,) = self._session.run([self.descriptor.output], feeds)
        if self.descriptor.task == "classification":
            return scores(np.asarray(out), self.descriptor.multi_label)  # (batch, labels)
        vectors = pool(np.asarray(out, dtype=np.float32), mask, self.descriptor.pooling)  # (batch, hidden)
        return l2_normalize(vectors) if self.descriptor.normalize else vectors

    def outputs(self, texts: Sequence[str], truncate: bool = False) -> NDArray[np.float32]:
        """Scores or vectors of ``texts``, whatever the task (what the health check compares)."""
        if not texts:
            raise BadInput("no texts given")
        return self.forward(self.encode(texts, truncate))

    def predict(self, texts: Sequence[str], truncate: bool = False) -> list[Prediction]:
        self._require("classification", "predict")
        rows = self.outputs(texts, truncate)  # (texts, labels)
        labels = self.descriptor.labels
        return [
            Prediction(labels[int(np.argmax(row))], dict(zip(labels, row.tolist(), strict=True)))
            for row in rows
        ]

    def embed(self, texts: Sequence[str], truncate: bool = False) -> NDArray[np.float32]:
        self._require("embedding", "embed")
        return self.outputs(texts, truncate)  # (texts, dimensions)

    def _require(self, task: str, method: str) -> None:
        if self.descriptor.task != task:
            other = "embed" if method == "predict" else "predict"
            raise BadInput(
                f"this model serves {self.descriptor.task}, not {task}: call .{other}() "
                f"(HTTP: /v1/{'embeddings' if other == 'embed' else 'classify'})",
                status=400,
            )


def _session(weights: Path, threads: int, optimized: Path | None) -> Any:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3  # the "hardware specific" note of a saved optimised graph: known, handled
    # No spinning: a device shares its cores with the HTTP server and the agent between requests.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    if optimized is not None and optimized.is_file():
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
        try:
            return ort.InferenceSession(str(optimized), options, providers=["CPUExecutionProvider"])
        except Exception:  # written by another machine or ONNX Runtime version, or cut short: rebuild it
            optimized.unlink(missing_ok=True)
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    staged = None if optimized is None else optimized.with_name(f".{optimized.name}.{os.getpid()}")
    if staged is not None:
        options.optimized_model_filepath = str(staged)
    try:
        session = ort.InferenceSession(str(weights), options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own untyped errors for a bad graph
        raise BadBundle(f"{weights}: ONNX Runtime cannot load it ({exc})") from None
    if staged is not None and optimized is not None and staged.is_file():
        os.replace(staged, optimized)  # whole or not at all: a half-written file is never loaded
    return session
