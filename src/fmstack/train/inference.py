"""Loading a trained version for inference: a model version, or an adapter version applied on its
exact base version. Used by ``fmstack eval``/``generate`` here and by compress and serve above.

    loaded = load(hub, "acme/intent-lora:2")   # torch module in eval mode + tokenizer + task facts
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from fmstack.errors import InvalidInput
from fmstack.hub import HubApi
from fmstack.servable import read_descriptor
from fmstack.train import adapter_descriptor, registry
from fmstack.train.context import TaskContext, with_tokenizer
from fmstack.train.prepare import load_tokenizer
from fmstack.transformers_logs import quiet_transformers


@dataclass(frozen=True)
class Loaded:
    model: nn.Module  # eval mode; a PeftModel for LoRA/IA3 adapters until merged
    tokenizer: Any
    task: str  # classification | embedding | mlm | clm
    labels: list[str]
    multi_label: bool
    pooling: str  # embedding: mean | cls
    normalize: bool
    max_length: int
    ref: str  # the exact version loaded, ns/name:N
    kind: str  # model | adapter
    method: str | None  # adapter versions: lora | ia3 | adapter | prefix
    base: str | None  # adapter versions: the base version they apply to
    merged: bool = False

    def context(self) -> TaskContext:
        return with_tokenizer(
            self.tokenizer,
            labels=self.labels,
            multi_label=self.multi_label,
            max_length=self.max_length,
            pooling=self.pooling,
            normalize=self.normalize,
        )


def infer_task(config: dict[str, Any]) -> str:
    """The task of a plain Hugging Face folder, from its architecture name."""
    arch = " ".join(config.get("architectures") or [])
    if "SequenceClassification" in arch:
        return "classification"
    if "MaskedLM" in arch:
        return "mlm"
    if "CausalLM" in arch or "LMHead" in arch:
        return "clm"
    return "embedding"


def _model_version(hub: HubApi, ref: str, folder: Path) -> Loaded:
    config = json.loads((folder / "config.json").read_text()) if (folder / "config.json").is_file() else None
    if config is None:
        raise InvalidInput(f"{ref} has no config.json: it is not a Hugging Face model folder")
    desc = read_descriptor(folder)
    task = desc.task if desc else infer_task(config)
    id2label = config.get("id2label") or {}
    labels = desc.labels if desc and desc.labels else [id2label[str(i)] for i in range(len(id2label))]
    ctx = TaskContext(labels=labels, multi_label=config.get("problem_type") == "multi_label_classification")
    model = registry.task(task).load_model(folder, ctx)
    return Loaded(
        model=model.eval(),
        tokenizer=load_tokenizer(folder),
        task=task,
        labels=labels if task == "classification" else [],
        multi_label=ctx.multi_label,
        pooling=desc.pooling if desc else "mean",
        normalize=desc.normalize if desc else True,
        max_length=desc.max_length if desc else 256,
        ref=ref,
        kind="model",
        method=None,
        base=None,
    )


def _adapter_version(hub: HubApi, ref: str, folder: Path) -> Loaded:
    desc = adapter_descriptor.read_adapter(folder)
    if desc is None:
        raise InvalidInput(
            f"{ref} has no {adapter_descriptor.ADAPTER_DESCRIPTOR}: not an adapter written by fmstack train"
        )
    base_dir = hub.checkout(desc.base)
    ctx = TaskContext(labels=desc.labels, multi_label=desc.multi_label, pooling=desc.pooling, head=desc.head)
    with torch.random.fork_rng(devices=[]):  # leave the caller's RNG stream alone
        torch.manual_seed(desc.init_seed)  # the same initialisation as in training (see the descriptor)
        model = registry.task(desc.task).load_model(base_dir, ctx)
        model = registry.method(desc.method).load(model, folder)
    return Loaded(
        model=model.eval(),
        tokenizer=load_tokenizer(base_dir),
        task=desc.task,
        labels=desc.labels,
        multi_label=desc.multi_label,
        pooling=desc.pooling,
        normalize=desc.normalize,
        max_length=desc.max_length,
        ref=ref,
        kind="adapter",
        method=desc.method,
        base=desc.base,
    )


def load(hub: HubApi, ref: str) -> Loaded:
    version = hub.resolve(ref)
    folder = hub.checkout(version.ref)
    with quiet_transformers():  # load notes and bars would land in the middle of a command's output
        if version.kind == "adapter":
            return _adapter_version(hub, version.ref, folder)
        if version.kind == "model":
            return _model_version(hub, version.ref, folder)
    raise InvalidInput(
        f"{version.ref} is a {version.kind}, not a model or adapter; pass a model or adapter ref"
    )
