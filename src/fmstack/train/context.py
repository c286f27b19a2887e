"""What a task needs to know about one run besides the model: labels, tokenizer ids, task options."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


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
    label_smoothing: float = 0.0  # classification, single-label
    rdrop: float = 0.0  # classification, single-label: weight of R-Drop's consistency term
    # classification, single-label: the loss weight of each class id (balanced class weights); empty: none
    class_weights: tuple[float, ...] = ()
    head: str = "linear"  # classification, a new head over the mean: linear | cosine
    seed: int = 0


def with_tokenizer(tokenizer: Any, **options: Any) -> TaskContext:
    """A context whose token ids (padding, mask, specials, vocabulary size) come from ``tokenizer``."""
    special = {getattr(tokenizer, f"{n}_token_id") for n in ("cls", "sep", "pad", "bos", "eos", "unk")}
    return TaskContext(
        pad_id=int(tokenizer.pad_token_id),
        mask_id=tokenizer.mask_token_id,
        special_ids=frozenset(i for i in special if i is not None),
        vocab_size=len(tokenizer),
        **options,
    )
