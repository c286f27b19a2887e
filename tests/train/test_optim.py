from __future__ import annotations

import torch
from torch import nn

from fmstack.train.optim import is_head, make_optimizer, param_groups


def _named() -> list[tuple[str, nn.Parameter]]:
    def p(*shape: int, trains: bool = True) -> nn.Parameter:
        return nn.Parameter(torch.zeros(*shape), requires_grad=trains)

    return [
        ("encoder.layer.0.attention.self.query.weight", p(4, 4)),
        ("encoder.layer.0.attention.self.query.bias", p(4)),
        ("encoder.layer.0.output.LayerNorm.weight", p(4)),
        ("encoder.embeddings.word_embeddings.weight", p(10, 4, trains=False)),
        ("classifier.weight", p(3, 4)),
        ("classifier.bias", p(3)),
    ]


def _sizes(groups: list[dict[str, object]]) -> list[tuple[int, float, float | None]]:
    return [(len(g["params"]), g["weight_decay"], g.get("lr")) for g in groups]  # type: ignore[arg-type, misc]


def test_without_head_lr_two_groups_split_by_weight_decay_only() -> None:
    # decay: query.weight, classifier.weight; no decay: the bias, LayerNorm and classifier.bias
    assert _sizes(param_groups(_named(), 0.01, None)) == [(2, 0.01, None), (3, 0.0, None)]


def test_head_lr_gives_the_head_groups_of_their_own_after_the_encoders() -> None:
    assert _sizes(param_groups(_named(), 0.01, 3e-3)) == [
        (1, 0.01, None),
        (2, 0.0, None),
        (1, 0.01, 3e-3),
        (1, 0.0, 3e-3),
    ]
    optimizer = make_optimizer(_named(), 1e-4, 0.01, 3e-3)
    assert [g["lr"] for g in optimizer.param_groups] == [1e-4, 1e-4, 3e-3, 3e-3]


def test_head_names_are_found_under_peft_wrappers() -> None:
    assert is_head("base_model.model.classifier.modules_to_save.default.weight")
    assert is_head("score.weight")
    assert not is_head("base_model.model.encoder.layer.0.attention.self.key.ia3_l.default")
