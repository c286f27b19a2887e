"""The parent of a compression: a hub model version loaded as a torch model, its tokenizer and task.

Two kinds of parent: a Hugging Face folder (``*ForSequenceClassification`` with ``id2label`` is a
classifier; a bare encoder such as ``BertModel`` is an embedding model, pooled as its
sentence-transformers files say, mean + L2 by default), and an adapter version, which the training
package loads onto its base and merges into plain weights first, so the export sees one dense model.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import torch

from fmstack.errors import InvalidInput, Unsupported
from fmstack.hub import HubApi
from fmstack.servable import read_descriptor

Task = Literal["classification", "embedding"]
Pooling = Literal["mean", "cls"]


@dataclass
class Parent:
    """A loaded model ready to export: ``model(input_ids, attention_mask)`` in eval mode."""

    ref: str
    model: torch.nn.Module
    tokenizer: Any
    task: Task
    labels: list[str] = field(default_factory=list)
    multi_label: bool = False
    pooling: Pooling = "mean"
    normalize: bool = True
    max_length: int = 256
    folder: Path | None = None  # the checked-out version (None for a merged adapter)
    merged_from: str | None = None  # "<method> adapter on <base ref>" when an adapter was merged


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"{path}: not readable JSON ({exc})") from None
    if not isinstance(data, dict):
        raise InvalidInput(f"{path}: expected a JSON object")
    return data


def task_of(config: dict[str, Any], ref: str) -> Task:
    """Classification or embedding, from ``config.json``'s architecture."""
    arch = str((config.get("architectures") or [config.get("model_type", "?")])[0])
    if arch.endswith("ForSequenceClassification"):
        return "classification"
    if arch.endswith("Model"):
        return "embedding"
    raise Unsupported(
        f"{ref}: architecture {arch!r} cannot be compressed; fmstack compresses sequence classifiers "
        "(*ForSequenceClassification) and encoders used for embeddings (e.g. BertModel)"
    )


def sentence_pooling(folder: Path) -> tuple[Pooling, bool]:
    """Pooling and normalisation from sentence-transformers files, or mean + L2 when there are none."""
    modules_file = folder / "modules.json"
    if not modules_file.is_file():
        return "mean", True
    modules = json.loads(modules_file.read_text())
    normalize = any(str(m.get("type", "")).endswith("Normalize") for m in modules)
    pooling: Pooling = "mean"
    for module in modules:
        if str(module.get("type", "")).endswith("Pooling"):
            pool_cfg = _read_json(folder / module.get("path", "") / "config.json")
            if pool_cfg.get("pooling_mode_cls_token"):
                pooling = "cls"
            elif not pool_cfg.get("pooling_mode_mean_tokens", True):
                raise Unsupported(f"{folder}: only mean or CLS pooling can be exported, not {pool_cfg}")
    return pooling, normalize


def max_length_of(folder: Path, config: dict[str, Any], tokenizer: Any) -> int:
    limits = [int(config.get("max_position_embeddings", 512)), 512]
    st_config = folder / "sentence_bert_config.json"
    if st_config.is_file():
        limits.append(int(_read_json(st_config).get("max_seq_length", 512)))
    model_max = getattr(tokenizer, "model_max_length", None)
    if isinstance(model_max, int) and model_max > 0:
        limits.append(model_max)
    return min(limits)


def load_folder(folder: Path, ref: str) -> Parent:
    """Load a Hugging Face model folder (the only place that calls transformers' loaders)."""
    from transformers import AutoTokenizer

    if not (folder / "config.json").is_file():
        raise InvalidInput(
            f"{ref} is not a model folder: it has no config.json (is it a dataset or ONNX version?)"
        )
    config = _read_json(folder / "config.json")
    task = task_of(config, ref)
    # The task's facts first: a folder that lacks them is refused before any weights load.
    labels = _label_names(config, ref) if task == "classification" else []
    pooling, normalize = sentence_pooling(folder) if task == "embedding" else ("mean", True)
    tokenizer = AutoTokenizer.from_pretrained(folder)
    return Parent(
        ref=ref,
        model=_load_model(folder, task).eval(),
        tokenizer=tokenizer,
        task=task,
        labels=labels,
        multi_label=config.get("problem_type") == "multi_label_classification",
        pooling=pooling,
        normalize=normalize,
        max_length=max_length_of(folder, config, tokenizer),
        folder=folder,
    )


def _label_names(config: dict[str, Any], ref: str) -> list[str]:
    """A classifier's labels in index order, from ``config.json``'s ``id2label``."""
    id2label = config.get("id2label") or {}
    if not id2label:
        raise InvalidInput(f"{ref}: config.json has no id2label; a classifier needs its label names")
    return [str(id2label[k]) for k in sorted(id2label, key=int)]


def _load_model(folder: Path, task: Task) -> torch.nn.Module:
    from transformers import AutoModel, AutoModelForSequenceClassification

    import fmstack.train.pooled  # noqa: F401  (registers fmstack's mean-pooled classifier with transformers)

    if task == "classification":
        model: torch.nn.Module = AutoModelForSequenceClassification.from_pretrained(folder)
        return model
    try:  # BERT-likes would otherwise build a pooler head that embeddings never use
        model = AutoModel.from_pretrained(folder, add_pooling_layer=False)
    except TypeError:  # encoders without a pooler do not take the argument
        model = AutoModel.from_pretrained(folder)
    return model


def _load_adapter(hub: HubApi, ref: str) -> Parent:
    """Load an adapter on its exact base through the training package and fold it into the base weights.

    LoRA and IA3 merge into plain weights; bottleneck adapters and prefixes cannot, and
    ``fmstack.train.merge`` raises ``Unsupported`` saying so.
    """
    from fmstack.train.inference import load
    from fmstack.train.merge import merge

    loaded = merge(load(hub, ref))
    if loaded.task not in ("classification", "embedding"):
        raise Unsupported(
            f"{ref}: task {loaded.task!r} cannot be compressed (classification or embedding only)"
        )
    return Parent(
        ref=ref,
        model=loaded.model.eval(),
        tokenizer=loaded.tokenizer,
        task="classification" if loaded.task == "classification" else "embedding",
        labels=list(loaded.labels),
        multi_label=loaded.multi_label,
        pooling="cls" if loaded.pooling == "cls" else "mean",
        normalize=loaded.normalize,
        max_length=loaded.max_length,
        merged_from=f"{loaded.method} adapter on {loaded.base}",
    )


def _apply_descriptor(parent: Parent, folder: Path) -> Parent:
    """A version written by ``fmstack train`` says its task facts in ``fmstack.json``; they win."""
    descriptor = read_descriptor(folder)
    if descriptor is None:
        return parent
    if descriptor.task != parent.task:
        raise InvalidInput(
            f"{parent.ref}: fmstack.json says task {descriptor.task!r} but config.json describes a {parent.task} model"
        )
    parent.pooling, parent.normalize = descriptor.pooling, descriptor.normalize
    parent.max_length = descriptor.max_length
    parent.labels = descriptor.labels or parent.labels
    parent.multi_label = descriptor.multi_label
    return parent


def load_parent(hub: HubApi, ref: str) -> Parent:
    """The parent of a compression, whatever kind of version ``ref`` names."""
    version = hub.resolve(ref)
    if version.kind == "dataset":
        raise InvalidInput(f"{version.ref} is a dataset version; compress takes a model or adapter version")
    if version.kind == "adapter":
        return _load_adapter(hub, version.ref)
    folder = hub.checkout(version.ref)
    if (folder / "model.onnx").is_file():
        raise InvalidInput(f"{version.ref} is already an ONNX version; compress its parent instead")
    return _apply_descriptor(load_folder(folder, version.ref), folder)
