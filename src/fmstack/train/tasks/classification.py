"""Sequence classification, single-label (cross-entropy) or multi-label (per-class sigmoid).

The head reads the mean of the token states by default (``pooling: mean``,
``fmstack.train.pooled``: what sentence encoders are trained for), or the architecture's own Hugging
Face head with ``pooling: cls`` (BERT's [CLS] pooler, GPT-2's last token). Either way a fully
fine-tuned output is a transformers folder that ``AutoModelForSequenceClassification`` loads.

Like a method plugin, the module loads torch and transformers inside its functions: the spec reads
its declarations (``options``, ``rules``) before those libraries load.
"""

from __future__ import annotations

import json
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

name = "classification"
metric = "accuracy"
higher_is_better = True
peft_task_type: str | None = "SEQ_CLS"
# TrainSpec fields it reads (pooling: embeddings too); a task that reads none may not set them.
options: tuple[str, ...] = ("head", "head_lr", "label_smoothing", "rdrop", "pooling", "class_weights")


def rules(values: Mapping[str, Any]) -> list[str]:
    """A cosine head is built only over the mean of the token states (``pooled.py``)."""
    if values.get("head", "linear") != "linear" and values.get("pooling") == "cls":
        return [
            "head: a cosine head is for classification with pooling 'mean' (pooling 'cls' uses the "
            "architecture's own head)"
        ]
    return []


def load_model(source: Path | PretrainedConfig, ctx: TaskContext) -> nn.Module:
    """A classifier for ``ctx.labels``: from a config (pretraining from scratch), a base encoder folder
    (a new head, pooled as ``ctx.pooling`` says) or a classifier folder (its own head, as saved)."""
    import torch
    from transformers import AutoModelForSequenceClassification, PretrainedConfig

    from fmstack.train.pooled import PooledClassifierConfig, PooledEncoderForSequenceClassification

    if not ctx.labels:
        raise InvalidInput("classification needs labels: the dataset manifest lists none")
    for option, value in (("label_smoothing", ctx.label_smoothing), ("rdrop", ctx.rdrop)):
        if ctx.multi_label and value:
            raise InvalidInput(
                f"{option} {value} is for single-label data; this dataset is multi-label: leave it at 0"
            )
    kwargs: dict[str, Any] = {
        "num_labels": len(ctx.labels),
        "id2label": dict(enumerate(ctx.labels)),
        "label2id": {n: i for i, n in enumerate(ctx.labels)},
        "problem_type": "multi_label_classification" if ctx.multi_label else "single_label_classification",
    }
    model: Any
    if isinstance(source, PretrainedConfig):
        for key, value in kwargs.items():
            setattr(source, key, value)
        if ctx.pooling == "mean":
            config = PooledClassifierConfig.wrapping(source, classifier_head=ctx.head)
            model = PooledEncoderForSequenceClassification(config)
        else:
            model = AutoModelForSequenceClassification.from_config(source)  # type: ignore[no-untyped-call]
    elif ctx.pooling == "mean" and not _is_classifier(source):
        model = PooledEncoderForSequenceClassification.from_encoder(
            source, classifier_head=ctx.head, **kwargs
        )
    else:
        if ctx.head != "linear":
            raise InvalidInput(
                f"{source} is already a classifier and keeps its own head: leave head at 'linear' "
                "(a new head is built over an encoder, not over a trained classifier)"
            )
        model = AutoModelForSequenceClassification.from_pretrained(source, dtype=torch.float32, **kwargs)
    if model.config.pad_token_id is None:  # decoder bases classify from the last non-pad token
        model.config.pad_token_id = ctx.pad_id
    return model  # type: ignore[no-any-return]


def _is_classifier(folder: Path) -> bool:
    """Whether the folder already holds a trained classification head (which keeps its own pooling)."""
    config = json.loads((folder / "config.json").read_text()) if (folder / "config.json").is_file() else {}
    return any(str(a).endswith("ForSequenceClassification") for a in config.get("architectures") or [])


def encode(table: pa.Table, tokenizer: Any, ctx: TaskContext) -> list[dict[str, Any]]:
    labels = label_ids(column(table, "label", "classification"), ctx.labels, ctx.multi_label)
    if "input_ids" in table.column_names:
        rows: list[dict[str, Any]] = [
            {"input_ids": list(x)} for x in column(table, "input_ids", "classification")
        ]
    else:
        pairs = column(table, "text_pair", "pairs") if "text_pair" in table.column_names else None
        rows = tokenize(tokenizer, column(table, "text", "classification"), pairs, ctx.max_length)
    for row, label in zip(rows, labels, strict=True):
        row["label"] = label
    return rows


def finalize(row: dict[str, Any], key: tuple[int, ...], ctx: TaskContext) -> dict[str, Any]:
    return row


def count(rows: list[dict[str, Any]]) -> int:
    return len(rows)


def collate(rows: list[dict[str, Any]], ctx: TaskContext) -> dict[str, torch.Tensor]:
    import torch

    from fmstack.train.batches import encoder_inputs

    if "features" in rows[0]:  # linear probe: cached pooled features
        batch = {"features": torch.stack([r["features"] for r in rows])}
    else:
        batch = encoder_inputs(rows, "input_ids", ctx.pad_id)
    if "label" not in rows[0]:  # setfit's --unlabeled texts, on their way to cached features
        return batch
    if ctx.multi_label:
        hot = torch.zeros(len(rows), len(ctx.labels))
        for i, r in enumerate(rows):
            hot[i, r["label"]] = 1.0
        batch["labels"] = hot
    else:
        batch["labels"] = torch.tensor([r["label"] for r in rows], dtype=torch.long)
    return batch


def logits(model: nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    inputs = {k: v for k, v in batch.items() if k != "labels"}
    return model(**inputs).logits  # type: ignore[no-any-return]  # (batch, classes)


def _loss_sum(
    out: torch.Tensor,
    labels: torch.Tensor,
    multi_label: bool,
    smoothing: float = 0.0,
    weights: tuple[float, ...] = (),
) -> torch.Tensor:
    """The summed loss of a batch; ``weights``: each class's weight (balanced class weights), which
    multiply each example's cross-entropy by its gold class's weight."""
    import torch
    from torch import nn

    if multi_label:
        return nn.functional.binary_cross_entropy_with_logits(out, labels, reduction="none").mean(dim=1).sum()
    weight = torch.tensor(weights, dtype=out.dtype, device=out.device) if weights else None
    return nn.functional.cross_entropy(out, labels, weight=weight, reduction="sum", label_smoothing=smoothing)


def balanced_weights(label_ids: list[int], classes: int) -> tuple[float, ...]:
    """n / (classes x count) per class, as scikit-learn's ``class_weight="balanced"``: every class then
    weighs as much in total. A class absent from the split gets 0 (it has no examples to weigh)."""
    counts = np.bincount(np.asarray(label_ids, dtype=np.int64), minlength=classes)
    n = int(counts.sum())
    return tuple(float(n / (classes * c)) if c else 0.0 for c in counts)


def outputs(model: nn.Module, batch: dict[str, torch.Tensor], ctx: TaskContext) -> torch.Tensor:
    """What the model answers for a batch: (batch, classes) logits."""
    return logits(model, batch)


def loss(model: nn.Module, batch: dict[str, torch.Tensor], ctx: TaskContext) -> tuple[torch.Tensor, int]:
    """The training loss (smoothed, with R-Drop, when asked); ``evaluate`` reports the plain cross-entropy."""
    if ctx.rdrop and model.training:
        return _rdrop_loss(model, batch, ctx)
    out = logits(model, batch).float()
    loss_sum = _loss_sum(out, batch["labels"], ctx.multi_label, ctx.label_smoothing, ctx.class_weights)
    return loss_sum, out.shape[0]


def _rdrop_loss(
    model: nn.Module, batch: dict[str, torch.Tensor], ctx: TaskContext
) -> tuple[torch.Tensor, int]:
    """R-Drop (Liang et al., 2021): every example goes through the model twice, with independent
    dropout masks, as one batch of twice the size. The paper's loss, CE1 + CE2 + rdrop/2 * (KL(p1||p2)
    + KL(p2||p1)), halved so that the cross-entropy keeps its usual scale."""
    import torch
    from torch import nn

    doubled = {k: torch.cat([v, v]) for k, v in batch.items() if k != "labels"}
    first, second = logits(model, doubled).float().chunk(2)
    labels = batch["labels"]
    ce = _loss_sum(first, labels, False, ctx.label_smoothing, ctx.class_weights) + _loss_sum(
        second, labels, False, ctx.label_smoothing, ctx.class_weights
    )
    p, q = first.log_softmax(dim=-1), second.log_softmax(dim=-1)
    kl = nn.functional.kl_div(p, q, reduction="sum", log_target=True) + nn.functional.kl_div(
        q, p, reduction="sum", log_target=True
    )
    return (ce + ctx.rdrop / 2 * kl) / 2, first.shape[0]


def predict(out: torch.Tensor, multi_label: bool) -> np.ndarray:
    if multi_label:
        return (out.sigmoid() > 0.5).int().cpu().numpy()
    return out.argmax(dim=-1).cpu().numpy()


def evaluate(model: nn.Module, batches: list[dict[str, torch.Tensor]], ctx: TaskContext) -> dict[str, Any]:
    import torch

    from fmstack.train.metrics import classification_metrics

    preds, gold, loss_sum, n = [], [], 0.0, 0
    with torch.no_grad():
        for batch in batches:
            out = logits(model, batch).float()
            preds.append(predict(out, ctx.multi_label))
            labels = batch["labels"]
            gold.append(labels.int().cpu().numpy() if ctx.multi_label else labels.cpu().numpy())
            loss_sum, n = loss_sum + float(_loss_sum(out, labels, ctx.multi_label)), n + out.shape[0]
    result = classification_metrics(np.concatenate(preds), np.concatenate(gold), ctx.labels, ctx.multi_label)
    result["loss"] = loss_sum / max(n, 1)
    return result
