"""What most method plugins declare alike: no rules of their own, a frozen base's FLOPs, and the model
and rows trained as given. A plugin that differs defines its own function instead of importing these."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from torch import nn


def no_rules(values: Mapping[str, Any]) -> list[str]:
    """The method adds no cross-field checks to the spec's."""
    return []


def frozen_base_flops(weights: float, trainable: int, attention: float) -> float:
    """Frozen base: forward 2N, activation gradients 2N, weight gradients only for the trainable."""
    return 4.0 * weights + 2.0 * trainable + attention


def as_given(
    model: nn.Module,
    rows: list[Any],
    eval_rows: list[Any],
    collate: Callable[..., Any],
    device: Any,
    spec: Any,
) -> tuple[nn.Module, list[Any], list[Any]]:
    """The loop trains the model itself on the rows themselves."""
    return model, rows, eval_rows
