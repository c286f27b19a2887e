"""A served artifact's own answers on a dataset split: the recipes score what ``fmstack serve`` will
run (the int8 ONNX version), not the model it was made from, so a threshold or an index matches what
the server does."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray

from fmstack.serve.runtimes.base import Runtime

BATCH = 64


def forward_texts(runtime: Runtime, texts: Sequence[str], batch: int = BATCH) -> NDArray[np.float32]:
    """(texts, labels) scores or (texts, dimensions) vectors; texts longer than the model's
    max_length are cut to it, keeping the tokenizer's closing special tokens, as the server's
    ``truncate`` does."""
    limit = runtime.info.max_length
    empty, one = runtime.encode(["", "x"])
    head = next((i for i, (a, b) in enumerate(zip(empty, one, strict=False)) if a != b), len(empty))
    tail = len(empty) - head  # special tokens after the text (BERT's [SEP]: 1)
    outputs = []
    for start in range(0, len(texts), batch):
        ids = runtime.encode(texts[start : start + batch])
        ids = [seq if len(seq) <= limit else seq[: limit - tail] + seq[len(seq) - tail :] for seq in ids]
        outputs.append(runtime.forward(ids))
    if not outputs:
        return np.zeros((0, 0), dtype=np.float32)
    return np.concatenate(outputs).astype(np.float32)
