"""Shared by the PEFT-backed methods (LoRA, IA3): PEFT's own adapter folder format, so
``PeftModel.from_pretrained`` loads what we write and ``merge_and_unload`` folds it into the base.
The saved ``target_modules`` name the adapted modules in full, so that PEFT refuses a model of another
layout instead of half-loading the adapter (docs/interop.md)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from peft import PeftConfig, PeftModel, get_peft_model
from peft.tuners.tuners_utils import BaseTunerLayer
from torch import nn

from fmstack.errors import InvalidInput
from fmstack.train.pooled import encoder_type, is_pooled


def targets(model: nn.Module, mapping: Mapping[str, Sequence[str]]) -> list[str] | None:
    """PEFT's default target modules for the model, or None to let PEFT choose.

    PEFT looks its defaults up by ``config.model_type``; a pooled classifier's is fmstack's own, so look
    them up by the encoder's architecture instead.
    """
    config = getattr(model, "config", None)
    if not is_pooled(config):
        return None
    found = mapping.get(encoder_type(config))
    if found is None:
        raise InvalidInput(
            f"PEFT has no default target modules for {encoder_type(config)!r} encoders; "
            "use --method full, adapter or probe, or --pooling cls"
        )
    return list(found)


def wrap(model: nn.Module, config: PeftConfig) -> nn.Module:
    try:
        return get_peft_model(model, config)
    except ValueError as exc:  # PEFT knows no default target modules for this architecture
        raise InvalidInput(f"PEFT cannot adapt {type(model).__name__}: {exc}") from None


def save(model: nn.Module, folder: Path) -> None:
    if not isinstance(model, PeftModel):
        raise InvalidInput(f"expected a PEFT model to save, got {type(model).__name__}")
    model.save_pretrained(str(folder))
    pin_targets(model, folder / "adapter_config.json")


def pin_targets(model: PeftModel, config_file: Path) -> None:
    """Name the adapted modules exactly, as one regular expression, in the saved ``adapter_config.json``.

    PEFT's default targets are short suffixes (``query``, ``value``) that exist in any BERT, so on a
    model of another layout (``BertForSequenceClassification``'s ``bert.encoder...`` where we trained
    ``encoder.encoder...``) PEFT injects fresh layers, finds none of the saved weights for them, and
    only warns: the model then answers as if untrained. A pattern of the full names matches no module
    of another layout, and PEFT raises "Target modules ... not found in the base model" instead.
    """
    task_model: nn.Module = model.base_model.model  # type: ignore[assignment]
    tuned = {name: m for name, m in task_model.named_modules() if isinstance(m, BaseTunerLayer)}
    config = json.loads(config_file.read_text())
    config["target_modules"] = _pattern(tuned)
    if "feedforward_modules" in config:  # IA3: which of them scale inputs rather than outputs
        config["feedforward_modules"] = _pattern(
            [n for n, m in tuned.items() if getattr(m, "is_feedforward", False)]
        )
    config_file.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")


def _pattern(names: Iterable[str]) -> str:
    # PEFT full-matches a string target against each module name; "(?!)" matches nothing.
    return "|".join(re.escape(name) for name in sorted(names)) or "(?!)"


def load(model: nn.Module, folder: Path) -> nn.Module:
    peft_model = PeftModel.from_pretrained(model, str(folder))
    check_loaded(peft_model, folder, "default")
    return peft_model


def check_loaded(model: PeftModel, folder: Path, adapter: str) -> None:
    """Refuse an adapter whose weights do not all fit ``model``.

    PEFT only warns when some of the model's adapter weights are missing from the folder (an adapter
    trained on another head or architecture), and the model then runs with those weights at their
    initial values: for LoRA, as if it had not been trained at all.
    """
    from peft import get_peft_model_state_dict
    from safetensors import safe_open

    weights = folder / "adapter_model.safetensors"
    if not weights.is_file():
        raise InvalidInput(f"{folder}: no adapter_model.safetensors; is this a PEFT adapter folder?")
    with safe_open(str(weights), "pt") as f:
        saved = set(f.keys())
    # save_embedding_layers="auto" would ask the Hugging Face Hub about the base's config (a network call).
    expected = get_peft_model_state_dict(model, adapter_name=adapter, save_embedding_layers=False)
    missing = sorted(set(expected) - saved)
    if missing:
        raise InvalidInput(
            f"{folder}: the adapter does not fit its base model: {len(missing)} of its weights are "
            f"missing (e.g. {missing[0]}). Was it trained on another head (fmstack.json 'pooling') or "
            "another base? Load it on the model it was trained on."
        )


def merge(model: nn.Module) -> nn.Module:
    if not isinstance(model, PeftModel):
        return model
    return model.merge_and_unload()  # type: ignore[no-any-return]
