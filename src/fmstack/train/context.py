"""What a task needs to know about one run besides the model: labels, tokenizer ids, task options."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class TaskContext:
    labels: list[str] = field(default_factory=list)  # classification: id -> name
    multi_label: bool = False
    pad_id: int = 0
    mask_id: int | None = None  # mlm
    special_ids: frozenset[int] = frozenset()  # never masked (mlm)
    vocab_size: int = 0
    max_length: int = 128
    pooling: str = "mean"  # embedding
    normalize: bool = True
    temperature: float = 0.05
    mlm_probability: float = 0.15
    seed: int = 0
