"""Which examples go into which step: seeded epoch order, length buckets, global -> micro-batch split,
and dynamic padding. Pure functions of (seed, epoch), so a resumed run sees the same batches.

A *global batch* is what one optimizer step consumes: batch_size x grad_accum x processes examples.
Splitting it the same way whatever the accumulation or process count is what makes 1x32, 2x16 and
4x8 (and 2 processes x 4 vs 1 x 8) the same optimisation.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch


def epoch_batches(
    lengths: Sequence[int], global_batch: int, seed: int, epoch: int, bucket: bool
) -> list[list[int]]:
    """Global batches of example ids for one epoch. A trailing partial batch is dropped (unequal
    micro-batches would break accumulation equivalence) unless it is the only one."""
    rng = np.random.default_rng([seed, epoch])
    order = rng.permutation(len(lengths)).tolist()
    if bucket:
        # Sort within windows of 50 batches: batches hold similar lengths (less padding) while the
        # epoch order stays random at the window level.
        window = global_batch * 50
        order = [
            i
            for start in range(0, len(order), window)
            for i in sorted(order[start : start + window], key=lambda j: lengths[j])
        ]
    batches = [order[i : i + global_batch] for i in range(0, len(order), global_batch)]
    if len(batches) > 1 and len(batches[-1]) < global_batch:
        batches.pop()
    if bucket:
        perm = rng.permutation(len(batches)).tolist()
        batches = [batches[p] for p in perm]
    return batches


def micro_batches(global_ids: list[int], accum: int, world: int, rank: int) -> list[list[int]]:
    """This process's micro-batches of one global batch: chunk ``micro * world + rank`` of the
    batch cut into ``accum * world`` equal parts."""
    parts = accum * world
    size = -(-len(global_ids) // parts)
    chunks = [global_ids[i * size : (i + 1) * size] for i in range(parts)]
    return [chunks[m * world + rank] for m in range(accum)]


@functools.cache
def pad_multiple() -> int:
    """What batch lengths are rounded up to: 8 where a CUDA GPU is present (its tensor cores want
    multiples of 8), else 1. On CPU the rounding is pure waste: on banking77's length buckets it made
    the model compute 1.26 tokens per real token instead of 1.07 (bench/README.md, bench/train_step.py)."""
    return 8 if torch.cuda.is_available() else 1


def pad(seqs: Sequence[Sequence[int]], value: int, multiple: int | None = None) -> torch.Tensor:
    """(batch, longest rounded up to ``multiple``: ``pad_multiple()`` by default) int64, right-padded
    with ``value``."""
    multiple = multiple or pad_multiple()
    longest = max((len(s) for s in seqs), default=1)
    longest = -(-longest // multiple) * multiple
    out = torch.full((len(seqs), longest), value, dtype=torch.long)
    for i, s in enumerate(seqs):
        out[i, : len(s)] = torch.as_tensor(list(s), dtype=torch.long)
    return out


def encoder_inputs(
    rows: Sequence[dict[str, Any]], key: str, pad_id: int, prefix: str = ""
) -> dict[str, torch.Tensor]:
    """input_ids / attention_mask (/ token_type_ids) for the sequences in ``rows[i][key]``."""
    ids = [r[key] for r in rows]
    batch = {prefix + "input_ids": pad(ids, pad_id)}
    batch[prefix + "attention_mask"] = pad([[1] * len(s) for s in ids], 0)[
        :, : batch[prefix + "input_ids"].shape[1]
    ]
    types_key = key.replace("input_ids", "token_type_ids")
    if types_key != key and rows and types_key in rows[0]:
        batch[prefix + "token_type_ids"] = pad([r[types_key] for r in rows], 0)
    return batch
