from __future__ import annotations

import torch
from torch import nn

from fmstack.train.optim import depth, is_head, make_optimizer, param_groups


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
    assert _sizes(param_groups(_named(), 1e-4, 0.01)) == [(2, 0.01, 1e-4), (3, 0.0, 1e-4)]


def test_head_lr_gives_the_head_groups_of_their_own_after_the_encoders() -> None:
    assert _sizes(param_groups(_named(), 1e-4, 0.01, 3e-3)) == [
        (1, 0.01, 1e-4),
        (2, 0.0, 1e-4),
        (1, 0.01, 3e-3),
        (1, 0.0, 3e-3),
    ]
    optimizer = make_optimizer(_named(), 1e-4, 0.01, 3e-3)
    assert [g["lr"] for g in optimizer.param_groups] == [1e-4, 1e-4, 3e-3, 3e-3]


def test_layer_decay_lowers_each_block_below_the_top_and_the_embeddings_most() -> None:
    def p() -> nn.Parameter:
        return nn.Parameter(torch.zeros(4, 4))

    named = [
        ("bert.embeddings.word_embeddings.weight", p()),
        ("bert.encoder.layer.0.attention.self.query.weight", p()),
        ("bert.encoder.layer.1.attention.self.query.weight", p()),
        ("bert.pooler.dense.weight", p()),
        ("classifier.weight", p()),
    ]
    rates = [g["lr"] for g in param_groups(named, 1.0, 0.0, 3e-3, layer_decay=0.5)]
    # top first: pooler (1), block 1 (0.5), block 0 (0.25), embeddings (0.125), then the head
    assert rates == [1.0, 0.5, 0.25, 0.125, 3e-3]
    # without a head rate of its own the head sits at the top with the pooler
    assert [len(g["params"]) for g in param_groups(named, 1.0, 0.0, None, 0.5)] == [2, 1, 1, 1]


def test_depth_reads_the_block_index_of_common_architectures() -> None:
    assert depth("base_model.model.bert.encoder.layer.5.output.dense.lora_A.default.weight", 6) == 6
    assert depth("transformer.h.0.attn.c_attn.weight", 2) == 1
    assert depth("transformer.wte.weight", 2) == 0
    assert depth("transformer.ln_f.weight", 2) == 3


def test_head_names_are_found_under_peft_wrappers() -> None:
    assert is_head("base_model.model.classifier.modules_to_save.default.weight")
    assert is_head("score.weight")
    assert not is_head("base_model.model.encoder.layer.0.attention.self.key.ia3_l.default")
