"""The contract every runtime meets, and what the server may know about a loaded model."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol

import numpy as np
from numpy.typing import NDArray

from fmstack.servable import ServableModel

Task = Literal["classification", "embedding"]


@dataclass(frozen=True)
class RuntimeInfo:
    task: Task
    platform: str  # "onnxruntime" or "pytorch", shown in model metadata
    max_length: int  # longest input in tokens, special tokens included
    labels: tuple[str, ...] = ()  # classification: index -> label
    multi_label: bool = False  # classification: independent sigmoid scores instead of a softmax
    dimensions: int = 0  # embedding: vector size
    base: str | None = None  # adapters: the base version they share in memory
    batches: int = 1  # batches it computes at once: the worker runs one thread per batch
    fallback_threshold: float | None = None  # classification: top score below it -> fallback: true

    @classmethod
    def of(
        cls,
        descriptor: ServableModel,
        platform: str,
        dimensions: int,
        base: str | None = None,
        batches: int = 1,
    ) -> RuntimeInfo:
        """What a runtime serves, as its descriptor says: the one place every runtime builds it from."""
        return cls(
            task=descriptor.task,
            platform=platform,
            max_length=descriptor.max_length,
            labels=tuple(descriptor.labels),
            multi_label=descriptor.multi_label,
            dimensions=dimensions if descriptor.task == "embedding" else 0,
            base=base,
            batches=batches,
            fallback_threshold=descriptor.fallback_threshold,
        )


class Runtime(Protocol):
    @property
    def info(self) -> RuntimeInfo: ...

    def encode(self, texts: Sequence[str]) -> list[list[int]]:
        """Token ids of each text, special tokens included, neither truncated nor padded."""
        ...

    def forward(self, batch: Sequence[Sequence[int]]) -> NDArray[np.float32]:
        """One pass over a batch of token ids: (batch, labels) scores or (batch, dimensions) vectors.
        Called from at most ``info.batches`` worker threads at a time."""
        ...

    def close(self) -> None:
        """Release the weights; the runtime is not used afterwards."""
        ...


class RuntimeLoader(Protocol):
    def __call__(self, folder: Path, descriptor: ServableModel | None, threads: int | None) -> Runtime: ...
