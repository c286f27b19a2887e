"""import-hf and import-builtin: safetensors only, pickles refused or converted safely."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from transformers import AutoModel, AutoTokenizer, BertConfig, BertForSequenceClassification

from fmstack.errors import InvalidInput
from fmstack.hub import Hub
from fmstack.hub.cards import parse_card
from fmstack.hub.importers import BUILTIN_REPO, import_builtin, import_hf


def tiny_bert_folder(folder: Path) -> BertForSequenceClassification:
    config = BertConfig(
        vocab_size=64,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=37,
        id2label={0: "refund", 1: "card_lost"},
        label2id={"refund": 0, "card_lost": 1},
    )
    torch.manual_seed(0)
    model = BertForSequenceClassification(config)
    model.save_pretrained(folder)
    return model


def test_import_hf_derives_a_card_from_the_config(hub: Hub, tmp_path: Path) -> None:
    tiny_bert_folder(tmp_path / "m")
    version = import_hf(hub, tmp_path / "m", "acme/tiny")
    meta, body = parse_card(hub.card(version.ref))
    assert meta.task == "text-classification" and "bert" in meta.tags
    assert "| layers | 2 |" in body and "| hidden size | 32 |" in body
    assert {f.path for f in hub.info(version.ref).files} == {"config.json", "model.safetensors"}
    assert list((hub.settings.home / "tmp").iterdir()) == []  # staged under FMSTACK_HOME, then removed


def test_pickle_weights_are_refused_then_converted(hub: Hub, tmp_path: Path) -> None:
    model = tiny_bert_folder(tmp_path / "m")
    (tmp_path / "m/model.safetensors").unlink()
    torch.save(model.state_dict(), tmp_path / "m/pytorch_model.bin")
    with pytest.raises(
        InvalidInput, match="pytorch_model.bin: pickle weights can run arbitrary code.*--convert"
    ):
        import_hf(hub, tmp_path / "m", "acme/tiny")
    assert hub.ls() == []

    version = import_hf(hub, tmp_path / "m", "acme/tiny", convert=True)
    assert {f.path for f in hub.info(version.ref).files} == {"config.json", "model.safetensors"}
    hub.pull(version.ref, tmp_path / "out")
    loaded = load_file(tmp_path / "out/model.safetensors")
    for name, tensor in model.state_dict().items():
        assert torch.equal(loaded[name], tensor)


def test_a_pickle_with_code_is_refused_even_with_convert(hub: Hub, tmp_path: Path) -> None:
    tiny_bert_folder(tmp_path / "m")
    (tmp_path / "m/model.safetensors").unlink()
    torch.save({"weight": torch.zeros(2), "hook": print}, tmp_path / "m/pytorch_model.bin")
    with pytest.raises(InvalidInput, match="cannot be loaded safely with weights_only=True"):
        import_hf(hub, tmp_path / "m", "acme/tiny", convert=True)
    assert hub.ls() == []


def test_folders_that_are_not_models_are_refused(hub: Hub, tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(InvalidInput, match="has no config.json"):
        import_hf(hub, tmp_path / "empty", "acme/x")
    (tmp_path / "noweights").mkdir()
    (tmp_path / "noweights/config.json").write_text(json.dumps({"model_type": "bert"}))
    with pytest.raises(InvalidInput, match="no \\*.safetensors weights"):
        import_hf(hub, tmp_path / "noweights", "acme/x")


def test_import_builtin_is_idempotent_and_loads_back_with_transformers(hub: Hub, tmp_path: Path) -> None:
    first = import_builtin(hub)
    assert first.ref == f"{BUILTIN_REPO}:1"
    assert import_builtin(hub).number == 1
    meta, _ = parse_card(hub.card(BUILTIN_REPO))
    assert meta.base_model == "sentence-transformers/all-MiniLM-L6-v2" and meta.license == "apache-2.0"
    hub.pull(BUILTIN_REPO, tmp_path / "minilm")
    tokenizer = AutoTokenizer.from_pretrained(tmp_path / "minilm")
    model = AutoModel.from_pretrained(tmp_path / "minilm")
    with torch.no_grad():
        out = model(**tokenizer(["my card was stolen"], return_tensors="pt")).last_hidden_state
    assert out.shape[-1] == 384
