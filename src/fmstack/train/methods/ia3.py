"""IA3 through PEFT: learned rescaling of keys, values and feed-forward activations."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from peft import IA3Config
from peft.utils import (
    TRANSFORMERS_MODELS_TO_IA3_FEEDFORWARD_MODULES_MAPPING,
    TRANSFORMERS_MODELS_TO_IA3_TARGET_MODULES_MAPPING,
)
from torch import nn

from fmstack.train.methods import peft_common

name = "ia3"
is_adapter = True


def apply(model: nn.Module, spec: Any, task: Any) -> nn.Module:
    config = IA3Config(
        task_type=task.peft_task_type,
        target_modules=peft_common.targets(model, TRANSFORMERS_MODELS_TO_IA3_TARGET_MODULES_MAPPING),
        feedforward_modules=peft_common.targets(
            model, TRANSFORMERS_MODELS_TO_IA3_FEEDFORWARD_MODULES_MAPPING
        ),
    )
    return peft_common.wrap(model, config)


def save(model: nn.Module, folder: Path) -> None:
    peft_common.save(model, folder)


def load(model: nn.Module, folder: Path) -> nn.Module:
    return peft_common.load(model, folder)


def merge(model: nn.Module) -> nn.Module:
    return peft_common.merge(model)
