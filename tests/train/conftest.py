"""Tiny models, tokenizers and datasets built on the spot (2 layers, hidden 32; nothing downloaded)."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest
import torch
from transformers import BertConfig, BertModel, GPT2Config, GPT2Model

from fmstack.data import format as dataformat
from fmstack.hub import Hub
from tests.tiny import FILLER, TOPICS, make_tokenizer

torch.set_num_threads(1)


def texts(n: int, seed: int = 0) -> tuple[list[str], list[str]]:
    """n short texts whose topic words reveal their label."""
    g = torch.Generator().manual_seed(seed)
    names = list(TOPICS)
    out, labels = [], []
    for i in range(n):
        label = names[i % len(names)]
        words = TOPICS[label].split()
        picks = [words[int(j)] for j in torch.randint(len(words), (3,), generator=g)]
        fill = [
            FILLER[int(j)]
            for j in torch.randint(len(FILLER), (int(torch.randint(1, 6, (1,), generator=g)),), generator=g)
        ]
        out.append(" ".join(fill[:2] + picks + fill[2:]))
        labels.append(label)
    return out, labels


def push_tiny_bert(hub: Hub, root: Path, repo: str = "test/tiny-bert", dropout: float = 0.0) -> str:
    folder = root / "tiny-bert"
    folder.mkdir(parents=True, exist_ok=True)
    tok = make_tokenizer(folder)
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=len(tok),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=64,
        hidden_dropout_prob=dropout,
        attention_probs_dropout_prob=dropout,
    )
    BertModel(config).save_pretrained(str(folder))
    return hub.push(repo, folder, "model").ref


def push_tiny_gpt2(hub: Hub, root: Path, repo: str = "test/tiny-gpt2") -> str:
    folder = root / "tiny-gpt2"
    folder.mkdir(parents=True, exist_ok=True)
    tok = make_tokenizer(folder)
    torch.manual_seed(0)
    config = GPT2Config(
        vocab_size=len(tok),
        n_embd=32,
        n_layer=2,
        n_head=2,
        n_positions=64,
        pad_token_id=0,
        resid_pdrop=0.0,
        embd_pdrop=0.0,
        attn_pdrop=0.0,
    )
    GPT2Model(config).save_pretrained(str(folder))
    return hub.push(repo, folder, "model").ref


def push_dataset(
    hub: Hub,
    root: Path,
    repo: str,
    splits: dict[str, pa.Table],
    labels: list[str] | None = None,
    **extra: object,
) -> str:
    folder = root / repo.replace("/", "_")
    folder.mkdir(parents=True, exist_ok=True)
    infos = {name: dataformat.write_split(folder, name, [table]) for name, table in splits.items()}
    columns = list(next(iter(splits.values())).column_names)
    dataformat.write_manifest(
        folder, dataformat.DatasetManifest(splits=infos, columns=columns, labels=labels or [], **extra)
    )  # type: ignore[arg-type]
    return hub.push(repo, folder, "dataset").ref


def classification_table(n: int, seed: int) -> pa.Table:
    t, labels = texts(n, seed)
    return pa.table({"text": t, "label": labels})


def push_classification(hub: Hub, root: Path, n_train: int = 64, n_eval: int = 24) -> str:
    return push_dataset(
        hub,
        root,
        "test/topics",
        {"train": classification_table(n_train, 1), "validation": classification_table(n_eval, 2)},
        labels=sorted(TOPICS),
    )


def equivalence_spec(base: str, data: str) -> dict[str, object]:
    """A short full fine-tune for comparing launchers: runs differing only in how the same global batch
    is split over processes must reach the same weights."""
    return {
        "task": "classification",
        "method": "full",
        "base": base,
        "data": data,
        "max_steps": 4,
        "lr": 1e-2,
        "seed": 2,
    }


def push_pairs(hub: Hub, root: Path, n: int = 32) -> str:
    def table(seed: int) -> pa.Table:
        a, _ = texts(n, seed)
        b, _ = texts(n, seed + 100)  # same label order: pair i shares a topic with text i
        return pa.table({"text": a, "text_pair": b})

    return push_dataset(hub, root, "test/pairs", {"train": table(1), "validation": table(2)})


def push_text(hub: Hub, root: Path, n: int = 48) -> str:
    return push_dataset(
        hub,
        root,
        "test/text",
        {"train": pa.table({"text": texts(n, 3)[0]}), "validation": pa.table({"text": texts(16, 4)[0]})},
    )


@pytest.fixture
def tiny_bert(hub: Hub, tmp_path: Path) -> str:
    return push_tiny_bert(hub, tmp_path)


@pytest.fixture
def tiny_gpt2(hub: Hub, tmp_path: Path) -> str:
    return push_tiny_gpt2(hub, tmp_path)


@pytest.fixture
def topics(hub: Hub, tmp_path: Path) -> str:
    return push_classification(hub, tmp_path)


def fit(hub: Hub, checkpoint_dir: Path, **fields: object):  # type: ignore[no-untyped-def]
    """Prepare and fit in this process without pushing; returns (Loop, FitResult)."""
    from accelerate import Accelerator

    from fmstack.train.loop import Loop
    from fmstack.train.prepare import prepare
    from fmstack.train.spec import parse_spec

    spec = parse_spec(fields)
    loop = Loop(prepare(hub, spec), Accelerator(cpu=True), checkpoint_dir)
    return loop, loop.fit()


def weights(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {n: p.detach().clone() for n, p in model.named_parameters()}
