"""``tokenize``: add ``input_ids`` / ``attention_mask`` with a hub model's fast tokenizer, batched.

The tokenizer is the model version's ``tokenizer.json`` loaded with Hugging Face ``tokenizers``
(the Rust "fast" tokenizer that ``transformers`` wraps), once per worker process."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

import numpy as np
import pyarrow as pa
from pydantic import Field
from tokenizers import Tokenizer

from fmstack.data.ops.base import Context, OpConfig, Stats
from fmstack.errors import Unsupported

BATCH = 1024


class TokenizeConfig(OpConfig):
    op: Literal["tokenize"] = "tokenize"
    model: str  # hub ref of a model with a tokenizer.json, e.g. fmstack/minilm-l6
    max_length: int = Field(default=128, ge=2, le=1_000_000)
    truncation: bool = True

    def models(self) -> list[str]:
        return [self.model]

    def build(self) -> Tokenize:
        return Tokenize(self)


@lru_cache(maxsize=4)
def load_tokenizer(folder: str, max_length: int, truncation: bool) -> Tokenizer:
    path = Path(folder) / "tokenizer.json"
    if not path.is_file():
        raise Unsupported(
            f"the model at {folder} has no tokenizer.json (a fast tokenizer); tokenize needs one: "
            "save the tokenizer with transformers (use_fast=True) and push the model again"
        )
    tokenizer = Tokenizer.from_file(str(path))
    tokenizer.no_padding()  # rows keep their own length; batching code pads later
    if truncation:
        tokenizer.enable_truncation(max_length)
    else:
        tokenizer.no_truncation()
    return tokenizer


def _lists(rows: list[list[int]]) -> pa.Array:
    lengths = np.fromiter((len(r) for r in rows), dtype=np.int32, count=len(rows))
    offsets = np.concatenate([[0], np.cumsum(lengths, dtype=np.int32)]).astype(np.int32)
    flat = np.fromiter((t for r in rows for t in r), dtype=np.int32, count=int(offsets[-1]))
    return pa.ListArray.from_arrays(pa.array(offsets), pa.array(flat))


class Tokenize:
    def __init__(self, config: TokenizeConfig) -> None:
        self.config = config

    def apply(self, table: pa.Table, ctx: Context) -> tuple[pa.Table, Stats]:
        c = self.config
        tokenizer = load_tokenizer(ctx.folders[c.model], c.max_length, c.truncation)
        texts = table.column("text").to_pylist()
        pairs = table.column("text_pair").to_pylist() if "text_pair" in table.column_names else None
        ids: list[list[int]] = []
        masks: list[list[int]] = []
        truncated = 0
        for start in range(0, len(texts), BATCH):
            chunk = texts[start : start + BATCH]
            inputs = list(zip(chunk, pairs[start : start + BATCH], strict=True)) if pairs else chunk
            for enc in tokenizer.encode_batch(inputs):
                ids.append(enc.ids)
                masks.append(enc.attention_mask)
                truncated += bool(enc.overflowing)
        for name in ("input_ids", "attention_mask"):
            if name in table.column_names:
                table = table.drop_columns([name])
        table = table.append_column("input_ids", _lists(ids)).append_column("attention_mask", _lists(masks))
        tokens = sum(len(r) for r in ids)
        return table, {
            "rows_in": len(texts),
            "rows_out": len(texts),
            "tokens": tokens,
            "rows_truncated": truncated,
        }
