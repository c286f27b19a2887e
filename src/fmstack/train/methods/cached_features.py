"""The torch side of ``--method probe`` (the plugin is ``probe.py``): the classifier's input features,
computed once by the frozen encoder and cached, and a module that runs only the head on them."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn
from transformers.modeling_outputs import SequenceClassifierOutput

from fmstack.errors import Unsupported


class HeadOnly(nn.Module):
    """Runs just the classifier on cached features, shaped like the full model's output."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.classifier: nn.Module = model.classifier  # type: ignore[assignment]

    def forward(self, features: torch.Tensor, **_: Any) -> SequenceClassifierOutput:
        return SequenceClassifierOutput(logits=self.classifier(features))  # (batch, classes)


@torch.no_grad()
def featurize(
    model: nn.Module,
    rows: list[dict[str, Any]],
    collate: Callable[[list[dict[str, Any]]], dict[str, torch.Tensor]],
    device: torch.device,
    batch_size: int = 64,
) -> list[dict[str, Any]]:
    """Each row gains ``features``: the input the classifier sees (captured by a hook, so the cache
    equals what the full model computes in eval mode)."""
    captured: list[torch.Tensor] = []

    def grab(_module: nn.Module, args: tuple[torch.Tensor, ...]) -> None:
        if args[0].dim() != 2:
            raise Unsupported(
                "probe needs a classifier over pooled (batch, hidden) features; this model pools after its head"
            )
        captured.append(args[0].detach().float().cpu())

    model.eval()
    head: Any = model.classifier
    hook = head.register_forward_pre_hook(grab)
    try:
        order = sorted(range(len(rows)), key=lambda i: len(rows[i]["input_ids"]))
        feats: dict[int, torch.Tensor] = {}
        for start in range(0, len(order), batch_size):
            ids = order[start : start + batch_size]
            batch = {k: v.to(device) for k, v in collate([rows[i] for i in ids]).items() if k != "labels"}
            captured.clear()
            model(**batch)
            feats.update(zip(ids, captured[0], strict=True))
    finally:
        hook.remove()
    # Unlabelled rows (setfit's --unlabeled) stay without a label.
    return [
        {"features": feats[i]} | ({"label": r["label"]} if "label" in r else {}) for i, r in enumerate(rows)
    ]
