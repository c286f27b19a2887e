"""The mean-pooled classification head: what training builds by default, how it saves and loads."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from transformers import AutoModelForSequenceClassification, BertForSequenceClassification

from fmstack.errors import InvalidInput, Unsupported
from fmstack.hub import Hub
from fmstack.train import adapter_descriptor
from fmstack.train.evaluate import evaluate
from fmstack.train.inference import load
from fmstack.train.pooled import (
    COSINE_SCALE,
    MODEL_TYPE,
    CosineClassifier,
    PooledEncoderForSequenceClassification,
)
from fmstack.train.run import train
from fmstack.train.spec import parse_spec


def finetune(hub: Hub, base: str, data: str, **fields: object) -> str:
    spec = {"task": "classification", "base": base, "data": data, "max_steps": 2, "batch_size": 8}
    return train(hub, parse_spec({**spec, "output": "test/cls", **fields})).output.ref


def test_default_head_pools_the_mean_and_loads_with_transformers_auto(
    hub: Hub, tiny_bert: str, topics: str
) -> None:
    ref = finetune(hub, tiny_bert, topics)
    folder = hub.checkout(ref)
    config = json.loads((folder / "config.json").read_text())
    assert config["model_type"] == MODEL_TYPE and config["encoder_model_type"] == "bert"
    model = AutoModelForSequenceClassification.from_pretrained(folder).eval()
    assert isinstance(model, PooledEncoderForSequenceClassification)
    assert model.encoder.pooler is None  # the [CLS] pooler is neither used nor saved
    ids = torch.tensor([[2, 7, 9, 3]])
    alone = model(input_ids=ids, attention_mask=torch.ones_like(ids)).logits
    # padding changes nothing: the mean covers real tokens only
    padded = torch.tensor([[2, 7, 9, 3, 0, 0], [2, 8, 8, 8, 8, 3]])
    mask = torch.tensor([[1, 1, 1, 1, 0, 0], [1, 1, 1, 1, 1, 1]])
    torch.testing.assert_close(model(input_ids=padded, attention_mask=mask).logits[:1], alone)
    torch.testing.assert_close(load(hub, ref).model(input_ids=ids).logits, alone)


def test_pooling_cls_keeps_the_architectures_own_head(hub: Hub, tiny_bert: str, topics: str) -> None:
    ref = finetune(hub, tiny_bert, topics, pooling="cls")
    model = AutoModelForSequenceClassification.from_pretrained(hub.checkout(ref))
    assert isinstance(model, BertForSequenceClassification)


@pytest.mark.parametrize("method", ["lora", "ia3"])
def test_peft_methods_target_the_encoder_under_the_pooled_head(
    hub: Hub, tiny_bert: str, topics: str, method: str
) -> None:
    loaded = load(hub, finetune(hub, tiny_bert, topics, method=method))
    targets = {n.rsplit(".", 1)[-1] for n, _ in loaded.model.named_modules()}
    assert {"query", "value"} & targets or {"key", "value"} & targets
    adapted = [n for n, _ in loaded.model.named_parameters() if "lora_" in n or "ia3_" in n]
    assert adapted and all(".encoder." in n for n in adapted)


def test_version_1_adapter_descriptors_meant_the_cls_head(tmp_path: Path) -> None:
    fields = {"method": "lora", "format": "peft", "base": "a/b:1", "task": "classification"}
    (tmp_path / adapter_descriptor.ADAPTER_DESCRIPTOR).write_text(json.dumps({"schema_version": 1, **fields}))
    old = adapter_descriptor.read_adapter(tmp_path)
    assert old is not None and old.pooling == "cls"
    (tmp_path / adapter_descriptor.ADAPTER_DESCRIPTOR).write_text(json.dumps(fields))
    new = adapter_descriptor.read_adapter(tmp_path)
    assert new is not None and new.pooling == "mean" and new.schema_version == 2


def test_a_cosine_head_scores_by_cosine_and_saves_and_loads(hub: Hub, tiny_bert: str, topics: str) -> None:
    ref = finetune(hub, tiny_bert, topics, head="cosine")
    model = AutoModelForSequenceClassification.from_pretrained(hub.checkout(ref)).eval()
    assert isinstance(model.classifier, CosineClassifier)
    ids = torch.tensor([[2, 7, 9, 3]])
    logits = model(input_ids=ids).logits
    hidden = model.encoder(input_ids=ids).last_hidden_state.mean(dim=1)
    expected = COSINE_SCALE * torch.nn.functional.cosine_similarity(
        hidden[:, None, :], model.classifier.weight[None, :, :], dim=-1
    )
    torch.testing.assert_close(logits, expected)
    torch.testing.assert_close(load(hub, ref).model(input_ids=ids).logits, logits)


@pytest.mark.parametrize("method", ["probe", "lora", "adapter"])
def test_every_method_keeps_its_cosine_head(hub: Hub, tiny_bert: str, topics: str, method: str) -> None:
    spec = {"task": "classification", "base": tiny_bert, "data": topics, "max_steps": 4, "batch_size": 8}
    result = train(hub, parse_spec({**spec, "output": "test/cls", "method": method, "head": "cosine"}))
    loaded = load(hub, result.output.ref)
    assert any(isinstance(m, CosineClassifier) for m in loaded.model.modules())
    # the version loads back to the weights the run evaluated in memory
    again = evaluate(loaded, hub.checkout(topics), "validation")
    assert again["loss"] == pytest.approx(result.metrics["loss"], rel=1e-5)


def test_a_cosine_head_is_refused_where_it_would_not_be_built(hub: Hub, tiny_bert: str, topics: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_spec(
            {"task": "classification", "base": "a/b", "data": "c/d", "head": "cosine", "pooling": "cls"}
        )
    assert "pooling 'mean'" in str(caught.value)
    with pytest.raises(InvalidInput, match="has no head"):
        parse_spec({"task": "embedding", "base": "a/b", "data": "c/d", "head": "cosine"})
    with pytest.raises(InvalidInput, match="already a classifier"):
        finetune(hub, finetune(hub, tiny_bert, topics), topics, head="cosine")


@pytest.mark.parametrize("method", ["full", "lora", "adapter"])
def test_a_gpt2_base_gets_the_mean_pooled_head(hub: Hub, tiny_gpt2: str, topics: str, method: str) -> None:
    # GPT-2 names its width n_embd; the wrapper config must still answer hidden_size
    ref = finetune(hub, tiny_gpt2, topics, method=method)
    loaded = load(hub, ref)
    if method == "full":
        config = loaded.model.config
        assert config.encoder_model_type == "gpt2" and config.hidden_size == config.n_embd == 32
    ids = torch.tensor([[2, 7, 9, 3]])
    assert loaded.model(input_ids=ids).logits.shape == (1, 3)


def test_prefix_tuning_refuses_a_gpt2_base_by_name(hub: Hub, tiny_gpt2: str, topics: str) -> None:
    with pytest.raises(Unsupported, match="this gpt2 model has none: use --method lora"):
        finetune(hub, tiny_gpt2, topics, method="prefix")
