"""R-Drop's training loss (``train.tasks.classification``): two dropout passes, one consistency term."""

from __future__ import annotations

from types import SimpleNamespace

import torch
from torch import nn

from fmstack.train.context import TaskContext
from fmstack.train.tasks import classification


class _Tiny(nn.Module):
    def __init__(self, dropout: float) -> None:
        super().__init__()
        self.embed = nn.Embedding(20, 8)
        self.drop = nn.Dropout(dropout)
        self.out = nn.Linear(8, 3)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> SimpleNamespace:
        return SimpleNamespace(logits=self.out(self.drop(self.embed(input_ids)).mean(dim=1)))


def _batch() -> dict[str, torch.Tensor]:
    ids = torch.randint(0, 20, (4, 5), generator=torch.Generator().manual_seed(0))
    return {"input_ids": ids, "attention_mask": torch.ones_like(ids), "labels": torch.tensor([0, 1, 2, 1])}


def _loss(model: nn.Module, rdrop: float) -> tuple[float, int]:
    torch.manual_seed(1)  # the same dropout masks for every call
    value, count = classification.loss(model, _batch(), TaskContext(labels=["a", "b", "c"], rdrop=rdrop))
    return value.item(), count


def test_without_dropout_the_two_passes_agree_and_r_drop_is_the_plain_loss() -> None:
    torch.manual_seed(0)
    model = _Tiny(dropout=0.0).train()
    plain, rdrop = _loss(model, 0.0), _loss(model, 1.0)
    assert rdrop[1] == plain[1] == 4  # examples, not the doubled batch
    assert abs(rdrop[0] - plain[0]) < 1e-5


def test_with_dropout_the_consistency_term_adds_to_the_loss_in_training_only() -> None:
    torch.manual_seed(0)
    model = _Tiny(dropout=0.5).train()
    # same masks for both: the cross-entropy halves are equal, the KL term is what differs
    assert _loss(model, 1.0)[0] > _loss(model, 1e-9)[0] + 1e-4
    model.eval()
    assert _loss(model, 1.0) == _loss(model, 0.0)
