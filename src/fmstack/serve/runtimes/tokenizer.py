"""Tokenisation shared by every runtime: the Rust ``tokenizers`` library, without its Python wrapper.

The server tokenises each request on arrival (the batcher needs lengths to build token-budget batches),
so the per-text cost matters: ``tokenizers.Tokenizer`` costs tens of microseconds per short text, several
times less than a ``transformers`` tokenizer call. Truncation and padding are switched off: an over-long
text is refused with a message rather than silently cut, and padding happens per batch in ``pad``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from tokenizers import Tokenizer

from fmstack.errors import InvalidInput

# Longest single text tokenised while holding the GIL (well under a millisecond).
_HOLD_GIL_CHARS = 2048


class TextEncoder:
    def __init__(self, tokenizer: Tokenizer, pad_id: int) -> None:
        tokenizer.no_truncation()
        tokenizer.no_padding()
        self._tokenizer = tokenizer
        self.pad_id = pad_id

    @classmethod
    def from_folder(cls, folder: Path) -> TextEncoder:
        path = folder / "tokenizer.json"
        if path.is_file():
            tokenizer = Tokenizer.from_file(str(path))
        else:  # slow-tokenizer folders (vocab.txt only): let transformers build the fast one
            from transformers import AutoTokenizer

            try:
                tokenizer = AutoTokenizer.from_pretrained(str(folder)).backend_tokenizer
            except (OSError, ValueError, AttributeError) as exc:
                raise InvalidInput(
                    f"{folder}: no usable tokenizer (expected tokenizer.json or the files of a "
                    f"Hugging Face tokenizer): {exc}"
                ) from None
        return cls(tokenizer, _pad_id(folder, tokenizer))

    def encode(self, texts: Sequence[str]) -> list[list[int]]:
        if len(texts) == 1 and len(texts[0]) <= _HOLD_GIL_CHARS:
            # ``encode_batch`` lets go of the GIL to tokenise in parallel: for one short text, the event
            # loop then waits to take it back from the compute threads. ``encode`` keeps it, which for
            # a long text (tokenised in a thread) would stall the event loop instead.
            return [self._tokenizer.encode(texts[0]).ids]
        return [e.ids for e in self._tokenizer.encode_batch(list(texts))]

    def pad(self, batch: Sequence[Sequence[int]]) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
        """(input_ids, attention_mask), both (batch, longest), right-padded."""
        width = max(len(ids) for ids in batch)
        ids = np.full((len(batch), width), self.pad_id, dtype=np.int64)
        mask = np.zeros((len(batch), width), dtype=np.int64)
        for row, seq in enumerate(batch):
            ids[row, : len(seq)] = seq
            mask[row, : len(seq)] = 1
        return ids, mask


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
