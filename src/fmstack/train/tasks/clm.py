"""Causal language modelling: predict each next token (from scratch or continued pretraining)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fmstack.train.context import TaskContext
from fmstack.train.tasks.encode import token_rows

if TYPE_CHECKING:
    import pyarrow as pa
    import torch
    from torch import nn
    from transformers import PretrainedConfig

name = "clm"
metric = "perplexity"
higher_is_better = False
peft_task_type: str | None = "CAUSAL_LM"

# Fields of TrainSpec that only the clm task reads.
options: tuple[str, ...] = ()


def rules(values: Mapping[str, Any]) -> list[str]:
    """No cross-field checks of its own (pretraining's are the spec's: they depend on --arch)."""
    return []


def load_model(source: Path | PretrainedConfig, ctx: TaskContext) -> nn.Module:
    import torch
    from transformers import AutoModelForCausalLM, PretrainedConfig

    if isinstance(source, PretrainedConfig):
        return AutoModelForCausalLM.from_config(source)  # type: ignore[no-untyped-call, no-any-return]
    return AutoModelForCausalLM.from_pretrained(source, dtype=torch.float32)


def encode(table: pa.Table, tokenizer: Any, ctx: TaskContext) -> list[dict[str, Any]]:
    return [r for r in token_rows(table, tokenizer, ctx.max_length, "clm") if len(r["input_ids"]) > 1]


def finalize(row: dict[str, Any], key: tuple[int, ...], ctx: TaskContext) -> dict[str, Any]:
    return row


def count(rows: list[dict[str, Any]]) -> int:
    return sum(len(r["input_ids"]) - 1 for r in rows)


def collate(rows: list[dict[str, Any]], ctx: TaskContext) -> dict[str, torch.Tensor]:
    from fmstack.train.batches import encoder_inputs

    batch = encoder_inputs(rows, "input_ids", ctx.pad_id)
    batch.pop("token_type_ids", None)
    return batch


def outputs(model: nn.Module, batch: dict[str, torch.Tensor], ctx: TaskContext) -> torch.Tensor:
    """What the model answers for a batch: (batch, seq, vocab) logits."""
    inputs = {k: v for k, v in batch.items() if k in ("input_ids", "attention_mask", "token_type_ids")}
    return model(**inputs).logits  # type: ignore[no-any-return]


def loss(model: nn.Module, batch: dict[str, torch.Tensor], ctx: TaskContext) -> tuple[torch.Tensor, int]:
    from torch import nn

    logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits.float()
    # position t predicts token t+1: (batch, seq-1, vocab) against (batch, seq-1)
    target = batch["input_ids"][:, 1:].masked_fill(batch["attention_mask"][:, 1:] == 0, -100)
    total = nn.functional.cross_entropy(
        logits[:, :-1].flatten(0, 1), target.flatten(), ignore_index=-100, reduction="sum"
    )
    return total, int((target != -100).sum())


def evaluate(model: nn.Module, batches: list[dict[str, torch.Tensor]], ctx: TaskContext) -> dict[str, Any]:
    import torch

    from fmstack.train.metrics import perplexity

    loss_sum, tokens = 0.0, 0
    with torch.no_grad():
        for batch in batches:
            s, c = loss(model, batch, ctx)
            loss_sum, tokens = loss_sum + float(s), tokens + c
    return perplexity(loss_sum, tokens)
