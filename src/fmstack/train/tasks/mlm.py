"""Masked language modelling (BERT-style: 15% of tokens chosen; 80% [MASK], 10% random, 10% kept).

Masks are drawn per example from a generator seeded by (seed, epoch, example id), so they do not
depend on how examples are grouped into batches or processes, and a resumed run redraws the same ones.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from fmstack.errors import InvalidInput
from fmstack.train.context import TaskContext
from fmstack.train.tasks.encode import token_rows

if TYPE_CHECKING:
    import pyarrow as pa
    import torch
    from torch import nn
    from transformers import PretrainedConfig

name = "mlm"
metric = "perplexity"
higher_is_better = False
peft_task_type: str | None = None

# Fields of TrainSpec that only the mlm task reads.
options: tuple[str, ...] = ("mlm_probability",)


def rules(values: Mapping[str, Any]) -> list[str]:
    """No cross-field checks of its own (pretraining's are the spec's: they depend on --arch)."""
    return []


def load_model(source: Path | PretrainedConfig, ctx: TaskContext) -> nn.Module:
    import torch
    from transformers import AutoModelForMaskedLM, PretrainedConfig

    if isinstance(source, PretrainedConfig):
        return AutoModelForMaskedLM.from_config(source)  # type: ignore[no-untyped-call, no-any-return]
    return AutoModelForMaskedLM.from_pretrained(source, dtype=torch.float32)  # type: ignore[no-any-return]


def encode(table: pa.Table, tokenizer: Any, ctx: TaskContext) -> list[dict[str, Any]]:
    if ctx.mask_id is None:
        raise InvalidInput("mlm needs a tokenizer with a mask token (e.g. a BERT WordPiece tokenizer)")
    return token_rows(table, tokenizer, ctx.max_length, "mlm")


def finalize(row: dict[str, Any], key: tuple[int, ...], ctx: TaskContext) -> dict[str, Any]:
    rng = np.random.default_rng([ctx.seed % 2**32, *(k % 2**32 for k in key)])  # key (-1, i): evaluation
    ids = np.asarray(row["input_ids"], dtype=np.int64)
    candidates = ~np.isin(ids, list(ctx.special_ids))
    chosen = candidates & (rng.random(len(ids)) < ctx.mlm_probability)
    if not chosen.any() and candidates.any():  # every row teaches something
        chosen[rng.choice(np.flatnonzero(candidates))] = True
    labels = np.where(chosen, ids, -100)
    roll = rng.random(len(ids))
    masked = ids.copy()
    swap = chosen & (roll >= 0.8) & (roll < 0.9)
    masked[swap] = rng.integers(0, ctx.vocab_size, int(swap.sum()))
    masked[chosen & (roll < 0.8)] = int(ctx.mask_id or 0)
    return {"input_ids": masked.tolist(), "labels": labels.tolist()}


def count(rows: list[dict[str, Any]]) -> int:
    return sum(sum(1 for x in r["labels"] if x != -100) for r in rows)


def collate(rows: list[dict[str, Any]], ctx: TaskContext) -> dict[str, torch.Tensor]:
    from fmstack.train.batches import encoder_inputs, pad

    batch = encoder_inputs(rows, "input_ids", ctx.pad_id)
    batch["labels"] = pad([r["labels"] for r in rows], -100)
    return batch


def outputs(model: nn.Module, batch: dict[str, torch.Tensor], ctx: TaskContext) -> torch.Tensor:
    """What the model answers for a batch: (batch, seq, vocab) logits."""
    inputs = {k: v for k, v in batch.items() if k in ("input_ids", "attention_mask", "token_type_ids")}
    return model(**inputs).logits  # type: ignore[no-any-return]


def loss(model: nn.Module, batch: dict[str, torch.Tensor], ctx: TaskContext) -> tuple[torch.Tensor, int]:
    from torch import nn

    inputs = {k: v for k, v in batch.items() if k != "labels"}
    logits = model(**inputs).logits.float()  # (batch, seq, vocab)
    labels = batch["labels"]
    total = nn.functional.cross_entropy(
        logits.flatten(0, 1), labels.flatten(), ignore_index=-100, reduction="sum"
    )
    return total, int((labels != -100).sum())


def evaluate(model: nn.Module, batches: list[dict[str, torch.Tensor]], ctx: TaskContext) -> dict[str, Any]:
    import torch

    from fmstack.train.metrics import perplexity

    loss_sum, tokens = 0.0, 0
    with torch.no_grad():
        for batch in batches:
            s, c = loss(model, batch, ctx)
            loss_sum, tokens = loss_sum + float(s), tokens + c
    return perplexity(loss_sum, tokens)
