"""From a spec to what the loop needs: the task model with the method applied, the tokenizer, the
task context and the encoded train/eval rows. Reads versions through ``hub.checkout`` only."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import pyarrow as pa
import torch
from torch import nn
from transformers import AutoTokenizer

from fmstack.data import format as dataformat
from fmstack.errors import InvalidInput
from fmstack.hub import HubApi
from fmstack.train import registry
from fmstack.train.archs import arch_config
from fmstack.train.context import TaskContext, with_tokenizer
from fmstack.train.registry import Method
from fmstack.train.spec import TrainSpec
from fmstack.train.tasks.classification import balanced_weights
from fmstack.train.tasks.encode import token_rows
from fmstack.transformers_logs import quiet_transformers

MAX_UNLABELED = 200_000  # --unlabeled rows (about an hour of setfit's self-training on 2 cores)


@dataclass
class Prepared:
    spec: TrainSpec
    task: ModuleType
    method: Method
    model: nn.Module
    tokenizer: Any
    ctx: TaskContext
    train_rows: list[dict[str, Any]]
    eval_rows: list[dict[str, Any]]
    eval_split: str | None
    base_dir: Path | None


def load_tokenizer(folder: Path) -> Any:
    try:
        tokenizer = AutoTokenizer.from_pretrained(str(folder))
    except (OSError, ValueError) as exc:
        raise InvalidInput(f"no usable tokenizer files in {folder}: {exc}") from None
    if tokenizer.pad_token_id is None:  # GPT-2 style tokenizers have no pad token: pad with EOS
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def task_context(spec: TrainSpec, manifest: dataformat.DatasetManifest, tokenizer: Any) -> TaskContext:
    return with_tokenizer(
        tokenizer,
        labels=list(manifest.labels),
        multi_label=manifest.multi_label,
        max_length=spec.max_length,
        pooling=spec.pooling,
        normalize=spec.normalize,
        temperature=spec.temperature,
        mlm_probability=spec.mlm_probability,
        label_smoothing=spec.label_smoothing,
        rdrop=spec.rdrop,
        head=spec.head,
        seed=spec.seed,
    )


def pick_eval_split(spec: TrainSpec, manifest: dataformat.DatasetManifest) -> str | None:
    if spec.eval_split is not None:
        if spec.eval_split not in manifest.splits:
            raise InvalidInput(
                f"eval split {spec.eval_split!r} is not in the dataset (splits: {', '.join(manifest.splits)})"
            )
        return spec.eval_split
    return "validation" if "validation" in manifest.splits else None


def tokenizer_source(hub: HubApi, spec: TrainSpec, manifest: dataformat.DatasetManifest) -> Path:
    if spec.base:
        return hub.checkout(spec.base)
    ref = spec.tokenizer or manifest.tokenizer
    if ref is None:
        raise InvalidInput(
            "pretraining from --arch needs a tokenizer: pass --tokenizer REF (a model version with tokenizer files)"
        )
    return hub.checkout(ref)


def label_name_text(label: str) -> str:
    """A label's name as a sentence: 'card_arrival' and 'card-arrival' read 'card arrival'."""
    return " ".join(label.replace("_", " ").replace("-", " ").split())


def label_name_rows(task: ModuleType, tokenizer: Any, ctx: TaskContext) -> list[dict[str, Any]]:
    """One labelled row per class whose text is the class's name (``--label-names-as-examples``)."""
    named = [label for label in ctx.labels if label_name_text(label)]
    table = pa.table({"text": [label_name_text(label) for label in named], "label": named})
    return task.encode(table, tokenizer, ctx)  # type: ignore[no-any-return]


def unlabeled_rows(hub: HubApi, ref: str, tokenizer: Any, max_length: int) -> list[dict[str, Any]]:
    """The ``--unlabeled`` dataset's train texts, tokenised and without a ``label`` key: that is how
    setfit's ``training_view`` tells them from the labelled rows."""
    table = dataformat.read_split(hub.checkout(ref), "train")
    if table.num_rows > MAX_UNLABELED:
        raise InvalidInput(
            f"--unlabeled: {ref} has {table.num_rows:,} rows; self-training reads at most "
            f"{MAX_UNLABELED:,} (each costs two encoder passes and a training step, and a few thousand are enough): sample it down first"
        )
    return token_rows(table.select(["text"]), tokenizer, max_length, "unlabeled")


def prepare(hub: HubApi, spec: TrainSpec) -> Prepared:
    """The spec's model, tokenizer and rows; transformers' load notes and bars are quiet meanwhile
    ("newly initialised head" is expected when fine-tuning)."""
    with quiet_transformers():
        return _prepare(hub, spec)


def _prepare(hub: HubApi, spec: TrainSpec) -> Prepared:
    task, method = registry.task(spec.task), registry.method(spec.method)
    data_dir = hub.checkout(spec.data)
    manifest = dataformat.read_manifest(data_dir)
    if spec.train_split not in manifest.splits:
        raise InvalidInput(
            f"the dataset has no {spec.train_split!r} split (splits: {', '.join(manifest.splits)})"
        )
    tokenizer = load_tokenizer(tokenizer_source(hub, spec, manifest))
    ctx = task_context(spec, manifest, tokenizer)
    base_dir = hub.checkout(spec.base) if spec.base else None
    torch.manual_seed(spec.seed)  # new heads, adapters and from-scratch weights start the same every run
    source = base_dir if base_dir is not None else arch_config(str(spec.arch), tokenizer, spec.max_length)
    model = method.apply(task.load_model(source, ctx), spec, task)
    train_rows = task.encode(dataformat.read_split(data_dir, spec.train_split), tokenizer, ctx)
    if not train_rows:
        raise InvalidInput(f"the {spec.train_split!r} split has no usable rows")
    if spec.class_weights == "balanced":
        if ctx.multi_label:
            raise InvalidInput(
                "class_weights balanced is for single-label data; this dataset is multi-label: leave it at none"
            )
        weights = balanced_weights([r["label"] for r in train_rows], len(ctx.labels))
        ctx = dataclasses.replace(ctx, class_weights=weights)
    if spec.label_names_as_examples:
        train_rows += label_name_rows(task, tokenizer, ctx)
    if spec.unlabeled:
        train_rows += unlabeled_rows(hub, spec.unlabeled, tokenizer, ctx.max_length)
    eval_split = pick_eval_split(spec, manifest)
    eval_rows = task.encode(dataformat.read_split(data_dir, eval_split), tokenizer, ctx) if eval_split else []
    return Prepared(spec, task, method, model, tokenizer, ctx, train_rows, eval_rows, eval_split, base_dir)
