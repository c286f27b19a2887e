"""IA3 through PEFT: learned rescaling of keys, values and feed-forward activations."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from fmstack.train.methods import shared

if TYPE_CHECKING:
    from torch import nn


name = "ia3"
is_adapter = True
adapter_format = "peft"
tasks = ("classification", "embedding", "mlm", "clm")
default_lr = (
    1e-2  # rescaling vectors start at 1 and need large steps (bench/README.md, "Every method, full data")
)
default_head_lr = None
options: tuple[str, ...] = ()
rules = shared.no_rules
flops_per_token = shared.frozen_base_flops
training_view = shared.as_given


def apply(model: nn.Module, spec: Any, task: Any) -> nn.Module:
    from peft import IA3Config
    from peft.utils import (
        TRANSFORMERS_MODELS_TO_IA3_FEEDFORWARD_MODULES_MAPPING,
        TRANSFORMERS_MODELS_TO_IA3_TARGET_MODULES_MAPPING,
    )

    from fmstack.train.methods import peft_common

    config = IA3Config(
        task_type=task.peft_task_type,
        target_modules=peft_common.targets(model, TRANSFORMERS_MODELS_TO_IA3_TARGET_MODULES_MAPPING),
        feedforward_modules=peft_common.targets(
            model, TRANSFORMERS_MODELS_TO_IA3_FEEDFORWARD_MODULES_MAPPING
        ),
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
