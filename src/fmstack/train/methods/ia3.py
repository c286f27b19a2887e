"""IA3 through PEFT: learned rescaling of keys, values and feed-forward activations."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from peft import IA3Config
from torch import nn

from fmstack.train.methods import peft_common

name = "ia3"
is_adapter = True


def apply(model: nn.Module, spec: Any, task: Any) -> nn.Module:
    return peft_common.wrap(model, IA3Config(task_type=task.peft_task_type))


def save(model: nn.Module, folder: Path) -> None:
    peft_common.save(model, folder)


def load(model: nn.Module, folder: Path) -> nn.Module:
    return peft_common.load(model, folder)


def merge(model: nn.Module) -> nn.Module:
    return peft_common.merge(model)
