"""Sentence embeddings trained contrastively with in-batch negatives.

From ``text``/``text_pair`` rows: each text's pair is its positive, every other pair in the batch a
negative (InfoNCE, both directions). From ``text``/``label`` rows: texts with the same label are
positives (supervised contrastive). Because negatives come from the batch, the loss depends on the
batch composition, so gradient accumulation is *not* equivalent to a larger batch for this task.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from fmstack.errors import InvalidInput
from fmstack.train.context import TaskContext
from fmstack.train.tasks.encode import column, label_ids, tokenize

if TYPE_CHECKING:
    import pyarrow as pa
    import torch
    from torch import nn
    from transformers import PretrainedConfig

name = "embedding"
metric = "recall@1"
higher_is_better = True
peft_task_type: str | None = "FEATURE_EXTRACTION"
# Fields of TrainSpec that only embeddings read (pooling is classification's too).
options: tuple[str, ...] = ("pooling", "normalize", "temperature")


def rules(values: Mapping[str, Any]) -> list[str]:
    """Embeddings add no cross-field checks of their own."""
    return []


def load_model(source: Path | PretrainedConfig, ctx: TaskContext) -> nn.Module:
    import torch
    from transformers import AutoModel, PretrainedConfig

    if isinstance(source, PretrainedConfig):
        return AutoModel.from_config(source)  # type: ignore[no-untyped-call, no-any-return]
    return AutoModel.from_pretrained(source, dtype=torch.float32)  # type: ignore[no-any-return]


def encode(table: pa.Table, tokenizer: Any, ctx: TaskContext) -> list[dict[str, Any]]:
    texts = column(table, "text", "embedding")
    rows = tokenize(tokenizer, texts, None, ctx.max_length)
    if "text_pair" in table.column_names:
        pairs = tokenize(tokenizer, column(table, "text_pair", "embedding"), None, ctx.max_length)
        for row, pair in zip(rows, pairs, strict=True):
            row["pair_input_ids"] = pair["input_ids"]
        return rows
    if "label" not in table.column_names:
        raise InvalidInput("embedding training needs text_pair (positive pairs) or label columns")
    for row, label in zip(
        rows, label_ids(column(table, "label", "embedding"), ctx.labels, False), strict=True
    ):
        row["label"] = label
    return rows


def finalize(row: dict[str, Any], key: tuple[int, ...], ctx: TaskContext) -> dict[str, Any]:
    return row


def count(rows: list[dict[str, Any]]) -> int:
    return len(rows)


def collate(rows: list[dict[str, Any]], ctx: TaskContext) -> dict[str, torch.Tensor]:
    import torch

    from fmstack.train.batches import encoder_inputs

    batch = encoder_inputs(rows, "input_ids", ctx.pad_id)
    if "pair_input_ids" in rows[0]:
        batch.update(encoder_inputs(rows, "pair_input_ids", ctx.pad_id, prefix="pair_"))
    else:
        batch["labels"] = torch.tensor([r["label"] for r in rows], dtype=torch.long)
    return batch


def pool(hidden: torch.Tensor, mask: torch.Tensor, pooling: str, normalize: bool) -> torch.Tensor:
    """(batch, seq, hidden) + (batch, seq) -> (batch, hidden)."""
    from torch import nn

    if pooling == "cls":
        out = hidden[:, 0]
    else:
        weights = mask.unsqueeze(-1).to(hidden.dtype)  # (batch, seq, 1)
        out = (hidden * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1e-9)
    return nn.functional.normalize(out, dim=-1) if normalize else out


def embed(
    model: nn.Module, batch: dict[str, torch.Tensor], ctx: TaskContext, prefix: str = ""
) -> torch.Tensor:
    inputs = {k[len(prefix) :]: v for k, v in batch.items() if k.startswith(prefix) and k != "labels"}
    if not prefix:
        inputs = {k: v for k, v in inputs.items() if not k.startswith("pair_")}
    hidden = model(**inputs).last_hidden_state  # (batch, seq, hidden)
    return pool(hidden.float(), inputs["attention_mask"], ctx.pooling, True)


def outputs(model: nn.Module, batch: dict[str, torch.Tensor], ctx: TaskContext) -> torch.Tensor:
    """What the model answers for a batch: (batch, hidden) pooled embeddings."""
    inputs = {k: v for k, v in batch.items() if not k.startswith("pair_") and k != "labels"}
    hidden = model(**inputs).last_hidden_state
    return pool(hidden.float(), inputs["attention_mask"], ctx.pooling, ctx.normalize)


def loss(model: nn.Module, batch: dict[str, torch.Tensor], ctx: TaskContext) -> tuple[torch.Tensor, int]:
    import torch
    from torch import nn

    a = embed(model, batch, ctx)  # (batch, hidden), unit norm: similarities are cosines
    n = a.shape[0]
    if "pair_input_ids" in batch:
        b = embed(model, batch, ctx, prefix="pair_")
        sims = a @ b.T / ctx.temperature  # (batch, batch); the diagonal holds the positives
        target = torch.arange(n, device=a.device)
        both = nn.functional.cross_entropy(sims, target, reduction="sum") + nn.functional.cross_entropy(
            sims.T, target, reduction="sum"
        )
        return both / 2, n
    labels = batch["labels"]
    sims = a @ a.T / ctx.temperature
    self_mask = torch.eye(n, dtype=torch.bool, device=a.device)
    sims = sims.masked_fill(self_mask, float("-inf"))
    positive = (labels[:, None] == labels[None, :]) & ~self_mask  # (batch, batch)
    log_prob = sims.log_softmax(dim=1).masked_fill(~positive, 0.0)
    has = positive.sum(dim=1)
    per_anchor = -log_prob.sum(dim=1) / has.clamp(min=1)  # anchors without a positive add 0
    return per_anchor.sum(), n


def evaluate(model: nn.Module, batches: list[dict[str, torch.Tensor]], ctx: TaskContext) -> dict[str, Any]:
    import torch

    from fmstack.train.metrics import recall_at_k

    queries, keys, labels = [], [], []
    with torch.no_grad():
        for batch in batches:
            queries.append(embed(model, batch, ctx).cpu().numpy())
            if "pair_input_ids" in batch:
                keys.append(embed(model, batch, ctx, prefix="pair_").cpu().numpy())
            else:
                labels.append(batch["labels"].cpu().numpy())
    q = np.concatenate(queries)
    if keys:
        return recall_at_k(q, np.concatenate(keys), [{i} for i in range(len(q))])
    lab = np.concatenate(labels)
    # Texts with the same label answer each other; a text never counts as its own answer.
    relevant = [set(np.flatnonzero(lab == lab[i]).tolist()) - {i} for i in range(len(lab))]
    return recall_at_k(q, q, relevant, exclude_self=True)
