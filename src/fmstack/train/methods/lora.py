"""LoRA through PEFT: low-rank updates on the attention projections (PEFT's defaults per architecture);
the classification head trains in full (PEFT's ``modules_to_save``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from peft import LoraConfig
from peft.utils import TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING
from torch import nn

from fmstack.train.methods import peft_common

name = "lora"
is_adapter = True


def apply(model: nn.Module, spec: Any, task: Any) -> nn.Module:
    config = LoraConfig(
        task_type=task.peft_task_type,
        r=spec.lora_r,
        lora_alpha=spec.lora_alpha,
        lora_dropout=spec.lora_dropout,
        target_modules=peft_common.targets(model, TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING),
    )
    return peft_common.wrap(model, config)


def save(model: nn.Module, folder: Path) -> None:
    peft_common.save(model, folder)


def load(model: nn.Module, folder: Path) -> nn.Module:
    return peft_common.load(model, folder)


def merge(model: nn.Module) -> nn.Module:
    return peft_common.merge(model)
