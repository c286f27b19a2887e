"""Balanced class weights (``class_weights: balanced``): the weights, the loss they make, and where
the option applies."""

from __future__ import annotations

import pytest
import torch

from fmstack.errors import InvalidInput
from fmstack.train.context import TaskContext
from fmstack.train.spec import parse_spec
from fmstack.train.tasks import classification


def test_balanced_weights_are_sklearns() -> None:
    import numpy as np
    from sklearn.utils.class_weight import compute_class_weight

    labels = [0] * 6 + [1] * 3 + [2]
    expected = compute_class_weight("balanced", classes=np.arange(3), y=np.array(labels))
    assert classification.balanced_weights(labels, 3) == pytest.approx(list(expected))
    assert classification.balanced_weights([0, 0, 1], 3)[2] == 0.0  # absent from the split


def test_the_weighted_loss_multiplies_each_example_by_its_class_weight() -> None:
    out = torch.tensor([[2.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    labels = torch.tensor([0, 1, 1])
    weights = (0.5, 2.0)
    ctx = TaskContext(labels=["a", "b"], class_weights=weights)

    class Fixed(torch.nn.Module):
        def forward(self, **_: torch.Tensor) -> object:
            return type("Out", (), {"logits": out})()

    loss, n = classification.loss(Fixed(), {"input_ids": torch.zeros(3, 1), "labels": labels}, ctx)
    each = torch.nn.functional.cross_entropy(out, labels, reduction="none")
    assert n == 3 and float(loss) == pytest.approx(float((each * torch.tensor([0.5, 2.0, 2.0])).sum()))


def test_class_weights_belong_to_classification() -> None:
    with pytest.raises(InvalidInput, match="class_weights: applies to classification only"):
        parse_spec({"task": "embedding", "base": "a/b", "data": "a/c", "class_weights": "balanced"})
    assert parse_spec({"task": "classification", "base": "a/b", "data": "a/c", "class_weights": "balanced"})
