"""Tiny models and datasets for compression tests (2 layers, hidden 32; built here, nothing downloaded).

The classifier is trained for a few steps on texts whose topic words give their label, so it is
accurate and a heavy compression visibly costs accuracy; the encoder is random (embeddings only
have to match their parent's).
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import pyarrow as pa
import pytest
import torch
from transformers import BertConfig, BertForSequenceClassification, BertModel, PreTrainedTokenizerFast

from fmstack.data import format as dataformat
from fmstack.hub import Hub
from tests.tiny import FILLER, LABELS, TOPICS, make_tokenizer

torch.set_num_threads(1)


def texts(n: int, seed: int = 0) -> tuple[list[str], list[str]]:
    """n short texts of varied length whose topic words reveal their label."""
    rng = random.Random(seed)
    out, labels = [], []
    for i in range(n):
        label = LABELS[i % len(LABELS)]
        words = rng.choices(TOPICS[label].split(), k=rng.randint(1, 4))
        words += rng.choices(FILLER, k=rng.randint(1, 12))
        rng.shuffle(words)
        out.append(" ".join(words))
        labels.append(label)
    return out, labels


def save_tokenizer(folder: Path) -> PreTrainedTokenizerFast:
    return make_tokenizer(folder, model_max_length=64)


def tiny_config(**extra: object) -> BertConfig:
    return BertConfig(
        vocab_size=64,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=64,
        max_position_embeddings=64,
        **extra,
    )


def build_classifier(folder: Path) -> Path:
    tokenizer = save_tokenizer(folder)
    torch.manual_seed(0)
    config = tiny_config(id2label=dict(enumerate(LABELS)), label2id={k: i for i, k in enumerate(LABELS)})
    model = BertForSequenceClassification(config)
    train_texts, train_labels = texts(96, seed=1)
    enc = tokenizer(train_texts, padding=True, return_tensors="pt")
    target = torch.tensor([LABELS.index(label) for label in train_labels])
    optim = torch.optim.AdamW(model.parameters(), lr=1e-2)
    model.train()
    for _ in range(60):  # full-batch steps: enough for ~100% on this easy task
        loss = model(**enc, labels=target).loss
        optim.zero_grad()
        loss.backward()
        optim.step()
    model.eval().save_pretrained(folder)
    return folder


def build_encoder(folder: Path) -> Path:
    save_tokenizer(folder)
    torch.manual_seed(0)
    BertModel(tiny_config(), add_pooling_layer=False).save_pretrained(folder)
    # sentence-transformers files: mean pooling + Normalize, as in all-MiniLM-L6-v2
    (folder / "modules.json").write_text(
        json.dumps(
            [
                {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
                {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
                {
                    "idx": 2,
                    "name": "2",
                    "path": "2_Normalize",
                    "type": "sentence_transformers.models.Normalize",
                },
            ]
        )
    )
    (folder / "1_Pooling").mkdir()
    (folder / "1_Pooling" / "config.json").write_text(
        json.dumps(
            {
                "word_embedding_dimension": 32,
                "pooling_mode_mean_tokens": True,
                "pooling_mode_cls_token": False,
            }
        )
    )
    return folder


def build_dataset(
    folder: Path, n: int = 60, labels: list[str] | None = None, splits: tuple[str, ...] = ("test",)
) -> Path:
    names = labels or LABELS
    infos = {}
    for i, split in enumerate(splits):
        data_texts, data_labels = texts(n, seed=7 + i)
        data_labels = [names[LABELS.index(label)] for label in data_labels]
        infos[split] = dataformat.write_split(
            folder, split, [pa.table({"text": data_texts, "label": data_labels})]
        )
    dataformat.write_manifest(
        folder, dataformat.DatasetManifest(splits=infos, columns=["text", "label"], labels=sorted(set(names)))
    )
    return folder


@pytest.fixture(scope="session")
def classifier_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_classifier(tmp_path_factory.mktemp("classifier"))


@pytest.fixture(scope="session")
def encoder_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_encoder(tmp_path_factory.mktemp("encoder"))


@pytest.fixture
def classifier(hub: Hub, classifier_dir: Path) -> str:
    return hub.push("acme/tiny-cls", classifier_dir, "model").ref


@pytest.fixture
def encoder(hub: Hub, encoder_dir: Path) -> str:
    return hub.push("acme/tiny-enc", encoder_dir, "model").ref


@pytest.fixture
def eval_data(hub: Hub, tmp_path: Path) -> str:
    return hub.push("acme/tiny-data", build_dataset(tmp_path / "data"), "dataset").ref


@pytest.fixture(scope="session")
def exported(
    tmp_path_factory: pytest.TempPathFactory, classifier_dir: Path, encoder_dir: Path
) -> dict[str, Path]:
    """fp32 ONNX graphs of both tiny models (export is the slow step: done once per session)."""
    from fmstack.compress.export import export_onnx
    from fmstack.compress.source import load_folder

    out = tmp_path_factory.mktemp("onnx")
    return {
        "classification": export_onnx(load_folder(classifier_dir, "t/cls"), out / "cls.onnx"),
        "embedding": export_onnx(load_folder(encoder_dir, "t/enc"), out / "enc.onnx"),
    }
