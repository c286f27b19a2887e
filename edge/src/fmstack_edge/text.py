"""Texts -> token ids -> padded arrays, exactly as ``fmstack serve`` does it (``serve/runtimes/tokenizer.py``).

The Rust ``tokenizers`` library with truncation and padding switched off: an over-long text is refused
(or, when asked, cut keeping the tokenizer's trailing special tokens), and padding happens per batch.
Only ``tokenizer.json`` is read: a bundle always carries it (``fmstack edge publish`` refuses a version
without one), so nothing from ``transformers`` is needed.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from tokenizers import Tokenizer

from fmstack_edge.errors import BadBundle, BadInput


class TextEncoder:
    def __init__(self, tokenizer: Tokenizer, pad_id: int, max_length: int) -> None:
        tokenizer.no_truncation()
        tokenizer.no_padding()
        self._tokenizer = tokenizer
        self.pad_id = pad_id
        self.max_length = max_length
        self.tail = _special_tail(tokenizer)

    @classmethod
    def from_folder(cls, folder: Path, max_length: int) -> TextEncoder:
        path = folder / "tokenizer.json"
        try:
            tokenizer = Tokenizer.from_file(str(path))
        except Exception as exc:  # tokenizers raises a bare Exception for a missing or broken file
            raise BadBundle(f"{path}: not a usable tokenizer ({exc})") from None
        return cls(tokenizer, _pad_id(folder, tokenizer), max_length)

    def encode(self, texts: Sequence[str], truncate: bool = False) -> list[list[int]]:
        for index, text in enumerate(texts):
            if not text.strip():
                raise BadInput(f"input {index} is blank; send text")
        ids = [e.ids for e in self._tokenizer.encode_batch(list(texts))]
        for index, seq in enumerate(ids):
            if len(seq) <= self.max_length:
                continue
            if not truncate:
                raise BadInput(
                    f"input {index} has {len(seq)} tokens; the model accepts at most {self.max_length} "
                    '(max_length): shorten or split the text, or send "truncate": true'
                )
            keep = self.max_length - self.tail
            ids[index] = seq[:keep] + seq[len(seq) - self.tail :]
        return ids

    def pad(self, batch: Sequence[Sequence[int]]) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
        """(input_ids, attention_mask), both (batch, longest), right-padded."""
        width = max(len(ids) for ids in batch)
        ids = np.full((len(batch), width), self.pad_id, dtype=np.int64)
        mask = np.zeros((len(batch), width), dtype=np.int64)
        for row, seq in enumerate(batch):
            ids[row, : len(seq)] = seq
            mask[row, : len(seq)] = 1
        return ids, mask


def _special_tail(tokenizer: Tokenizer) -> int:
    """How many special tokens the tokenizer appends to a text (BERT's [SEP]: 1), found as ``fmstack
    serve`` finds them, by comparing the ids of "" and "x": a cut text keeps them at its end."""
    empty, one = (e.ids for e in tokenizer.encode_batch(["", "x"]))
    head = next((i for i, (a, b) in enumerate(zip(empty, one, strict=False)) if a != b), len(empty))
    return len(empty) - head


def _pad_id(folder: Path, tokenizer: Tokenizer) -> int:
    config = folder / "tokenizer_config.json"
    name = "[PAD]"
    if config.is_file():
        token = json.loads(config.read_text()).get("pad_token")
        if isinstance(token, dict):  # older configs store an AddedToken object
            token = token.get("content")
        if isinstance(token, str):
            name = token
    found = tokenizer.token_to_id(name)
    return 0 if found is None else found
