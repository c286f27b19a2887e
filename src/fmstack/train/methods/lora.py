"""LoRA through PEFT: low-rank updates on the attention projections (PEFT's defaults per architecture);
the classification head trains in full (PEFT's ``modules_to_save``)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from fmstack.train.methods import shared

if TYPE_CHECKING:
    from torch import nn


name = "lora"
is_adapter = True
adapter_format = "peft"
tasks = ("classification", "embedding", "mlm", "clm")
default_lr = 2e-3  # few, fresh parameters need larger steps (bench/README.md, "Every method, full data")
default_head_lr = None
options = ("lora_r", "lora_alpha", "lora_dropout")
rules = shared.no_rules
flops_per_token = shared.frozen_base_flops
training_view = shared.as_given


def apply(model: nn.Module, spec: Any, task: Any) -> nn.Module:
    from peft import LoraConfig
    from peft.utils import TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING

    from fmstack.train.methods import peft_common

    config = LoraConfig(
        task_type=task.peft_task_type,
        r=spec.lora_r,
        lora_alpha=spec.lora_alpha,
        lora_dropout=spec.lora_dropout,
        target_modules=peft_common.targets(model, TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING),
    )
    return peft_common.wrap(model, config)


def save(model: nn.Module, folder: Path) -> None:
    from fmstack.train.methods import peft_common

    peft_common.save(model, folder)


def load(model: nn.Module, folder: Path) -> nn.Module:
    from fmstack.train.methods import peft_common

    return peft_common.load(model, folder)


def merge(model: nn.Module) -> nn.Module:
    from fmstack.train.methods import peft_common

    return peft_common.merge(model)
