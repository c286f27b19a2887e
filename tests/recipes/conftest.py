"""A tiny base encoder for the recipes' end-to-end tests: BERT with 2 layers and hidden size 32 built
from a config (never downloaded), with the built-in MiniLM's tokenizer so that any English text
tokenises as it would for the real base. Built once per session; each test pushes it to its hub."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch

from fmstack.hub import Hub
from fmstack.hub.importers import builtin_model_dir

TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "special_tokens_map.json")
BASE = "test/tiny-encoder"


@pytest.fixture(scope="session")
def encoder_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from transformers import BertConfig, BertModel

    folder = tmp_path_factory.mktemp("recipes") / "encoder"
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=30522,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=64,
    )
    BertModel(config, add_pooling_layer=False).save_pretrained(folder)
    for name in TOKENIZER_FILES:
        shutil.copy(builtin_model_dir() / name, folder / name)
    return folder


@pytest.fixture
def tiny_hub(hub: Hub, encoder_dir: Path) -> Hub:
    hub.push(BASE, encoder_dir, "model")
    return hub
