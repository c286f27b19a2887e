"""Full fine-tuning (and pretraining): every weight trains; the output is a plain model version."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from torch import nn

from fmstack.errors import Unsupported

name = "full"
is_adapter = False


def apply(model: nn.Module, spec: Any, task: Any) -> nn.Module:
    model.requires_grad_(True)
    return model


def save(model: nn.Module, folder: Path) -> None:
    raise Unsupported("full fine-tuning writes a model version, not adapter files")


def load(model: nn.Module, folder: Path) -> nn.Module:
    return model


def merge(model: nn.Module) -> nn.Module:
    return model
