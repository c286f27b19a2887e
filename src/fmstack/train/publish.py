"""Writing a trained model into a version folder: a plain Hugging Face folder (+ ``fmstack.json``) for
full fine-tunes, probes and pretraining; adapter files (+ ``fmstack_adapter.json``) for adapters."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from fmstack.hub.cards import CardMeta, render_card
from fmstack.hub.importers import BUILTIN_REPO, BUILTIN_SOURCE
from fmstack.hub.refs import parse_ref
from fmstack.servable import ServableModel, write_descriptor
from fmstack.train import adapter_descriptor
from fmstack.train.methods.heads import head_modules
from fmstack.train.pooled import is_pooled, save_config_with_code
from fmstack.train.prepare import Prepared
from fmstack.train.registry import Method


def write_output(prep: Prepared, model: Any, folder: Path, base_ref: str | None, data_ref: str) -> str:
    """Fill ``folder``; returns the hub kind to push it as ("model" or "adapter")."""
    spec, ctx = prep.spec, prep.ctx
    if prep.method.is_adapter:
        prep.method.save(model, folder)
        if prep.method.adapter_format == "peft":
            _make_standard(_task_model(model), folder, base_ref)
        heads = list(head_modules(_task_model(model)))
        adapter_descriptor.write(
            folder,
            adapter_descriptor.ADAPTER_DESCRIPTOR,
            adapter_descriptor.AdapterDescriptor(
                method=spec.method,
                format=prep.method.adapter_format,
                base=str(base_ref),
                task=spec.task,
                labels=ctx.labels if spec.task == "classification" else [],
                multi_label=ctx.multi_label,
                pooling=spec.pooling,
                head=spec.head,
                normalize=spec.normalize,
                max_length=spec.max_length,
                head_file="adapter_model.safetensors" if heads else None,
                head_modules=heads,
                dataset=data_ref,
                init_seed=spec.seed,
            ),
        )
        return "adapter"
    model.save_pretrained(str(folder))
    prep.tokenizer.save_pretrained(str(folder))
    if spec.task in ("classification", "embedding"):
        write_descriptor(
            folder,
            ServableModel(
                format="pytorch",
                file="model.safetensors",
                task=spec.task,
                labels=ctx.labels if spec.task == "classification" else [],
                multi_label=ctx.multi_label,
                pooling=spec.pooling,
                normalize=spec.normalize,
                max_length=spec.max_length,
                output="logits" if spec.task == "classification" else "last_hidden_state",
            ),
        )
    return "model"


def _task_model(model: Any) -> Any:
    """The task model under a PEFT wrapper (whose heads live at base_model.model)."""
    inner = getattr(getattr(model, "base_model", None), "model", None)
    return inner if inner is not None and hasattr(model, "peft_config") else model


def _make_standard(task_model: Any, folder: Path, base_ref: str | None) -> None:
    """What PEFT users need beyond PEFT's own files (docs/interop.md): a base name PEFT can load, and,
    over fmstack's mean-pooled classifier, that classifier's config and code (``auto_map``)."""
    if base_ref:
        _point_peft_config_at(folder, standard_base_name(base_ref))
    if is_pooled(getattr(task_model, "config", None)):
        save_config_with_code(task_model.config, folder)


def standard_base_name(base_ref: str) -> str:
    """The ``base_model_name_or_path`` to record: the Hugging Face id of the built-in base (which is
    that model, byte for byte), else the hub ref (users pass their pulled copy of it)."""
    return BUILTIN_SOURCE if parse_ref(base_ref).repo == BUILTIN_REPO else base_ref


def _point_peft_config_at(folder: Path, base: str) -> None:
    # PEFT records the local checkout path, which means nothing on another machine.
    path = folder / "adapter_config.json"
    config = json.loads(path.read_text())
    config["base_model_name_or_path"] = base
    path.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")


def card(prep: Prepared, base_ref: str | None, data_ref: str, metrics: dict[str, float], run_id: int) -> str:
    spec = prep.spec
    meta = CardMeta(
        task=spec.task,
        base_model=base_ref or spec.arch,
        datasets=[data_ref],
        metrics={k: round(v, 6) for k, v in metrics.items()},
        tags=["fmstack-train", spec.method],
    )
    rows = "\n".join(f"| {k} | {v:.4f} |" for k, v in metrics.items())
    body = (
        f"# {spec.task} ({spec.method})\n\nTrained by fmstack run {run_id} from "
        f"`{base_ref or spec.arch}` on `{data_ref}`.\n\n| metric | value |\n| --- | --- |\n{rows}\n"
    )
    usage = standard_usage(spec.task, prep.method, spec.pooling)
    return render_card(meta, body + (f"\n## Without fmstack\n\n{usage}\n" if usage else ""))


def standard_usage(task: str, method: Method, pooling: str) -> str | None:
    """How a pulled copy loads in the standard tools (docs/interop.md), for the card; None where
    there is nothing to add to the usual ``from_pretrained`` or no standard tool runs it."""
    if task != "classification":
        return None
    if method.adapter_format == "fmstack":
        return "A bottleneck/prefix adapter runs only in fmstack (`fmstack serve`); see docs/interop.md."
    if not method.is_adapter:
        args = "folder, trust_remote_code=True" if pooling == "mean" else "folder"
        return f"```python\nmodel = AutoModelForSequenceClassification.from_pretrained({args})\n```"
    if pooling == "cls":
        return (
            "```python\nbase = AutoModelForSequenceClassification.from_pretrained(base_folder, num_labels=N)\n"
            "model = PeftModel.from_pretrained(base, folder)\n```"
        )
    return (
        "```python\nconfig = AutoConfig.from_pretrained(folder, trust_remote_code=True)\n"
        'Classifier = get_class_from_dynamic_module("pooled.PooledEncoderForSequenceClassification", folder)\n'
        "model = PeftModel.from_pretrained(Classifier.from_pretrained(base_folder, config=config), folder)\n```"
    )
