"""Linear probe: the encoder stays frozen, its pooled features are computed once and cached, and only
the classifier head trains on them (the fast baseline; ``cached_features.py``). The output is a model
version whose weights are the base's plus the trained head, so it serves like any fine-tuned classifier.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fmstack.errors import Unsupported

if TYPE_CHECKING:
    from torch import nn

name = "probe"
is_adapter = False
adapter_format = None
tasks = ("classification",)  # it trains a classifier head: it needs labels
default_lr = 1e-2
default_head_lr = None  # the head is all that trains: --lr is its rate
options: tuple[str, ...] = ()


def rules(values: Mapping[str, Any]) -> list[str]:
    problems = []
    if values.get("rdrop"):
        problems.append("rdrop: probe trains a linear head on cached features, with no dropout to differ")
    if values.get("head_lr") is not None:
        problems.append(
            "head_lr: applies to classification with an encoder that trains too (probe trains only the "
            "head: use --lr)"
        )
    if values.get("layer_decay") is not None:
        problems.append("layer_decay: probe trains only the head, which has no layers; use --lr")
    return problems


def flops_per_token(weights: float, trainable: int, attention: float) -> float:
    """6 x the head's parameters: the encoder ran once, before training, to cache the features."""
    return 6.0 * trainable


def training_view(
    model: nn.Module,
    rows: list[Any],
    eval_rows: list[Any],
    collate: Callable[..., Any],
    device: Any,
    spec: Any,
) -> tuple[nn.Module, list[Any], list[Any]]:
    """The head alone, on the cached features of every train and eval row."""
    from fmstack.train.methods.cached_features import HeadOnly, featurize

    model.to(device)
    rows = featurize(model, rows, collate, device)
    eval_rows = featurize(model, eval_rows, collate, device) if eval_rows else []
    return HeadOnly(model), rows, eval_rows


def apply(model: nn.Module, spec: Any, task: Any) -> nn.Module:
    from fmstack.train.methods.heads import freeze_all_but_heads, head_modules

    freeze_all_but_heads(model)
    if "classifier" not in head_modules(model):
        raise Unsupported(f"probe needs a model with a 'classifier' head; {type(model).__name__} has none")
    return model


def save(model: nn.Module, folder: Path) -> None:
    raise Unsupported("a probe writes a model version (base weights + trained head), not adapter files")


def load(model: nn.Module, folder: Path) -> nn.Module:
    return model


def merge(model: nn.Module) -> nn.Module:
    return model
