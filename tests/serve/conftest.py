"""Tiny real models for the server's tests: BERT with 2 layers and hidden size 32, built from configs
(never downloaded), with the built-in MiniLM's tokenizer files, as PyTorch folders and as ONNX exports
with their ``fmstack.json`` descriptors. Built once per session; each test pushes them to its own hub."""

from __future__ import annotations

import shutil
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from fmstack.hub import Hub
from fmstack.hub.importers import builtin_model_dir
from fmstack.servable import ServableModel, write_descriptor
from fmstack.serve import RunningServer, ServeSettings, start_server

LABELS = ["billing", "greeting", "refund"]
_TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "special_tokens_map.json")


def _config(**extra: object) -> object:
    from transformers import BertConfig

    return BertConfig(
        vocab_size=30522,  # the MiniLM tokenizer's vocabulary
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=37,
        max_position_embeddings=64,
        **extra,
    )


def _copy_tokenizer(dest: Path) -> None:
    for name in _TOKENIZER_FILES:
        shutil.copy(builtin_model_dir() / name, dest / name)


def build_classifier(dest: Path, seed: int) -> Path:
    from transformers import BertForSequenceClassification

    torch.manual_seed(seed)
    config = _config(id2label=dict(enumerate(LABELS)), label2id={k: i for i, k in enumerate(LABELS)})
    BertForSequenceClassification(config).save_pretrained(dest)  # type: ignore[arg-type]
    _copy_tokenizer(dest)
    return dest


def build_encoder(dest: Path, seed: int) -> Path:
    from transformers import BertModel

    torch.manual_seed(seed)
    BertModel(_config()).save_pretrained(dest)  # type: ignore[arg-type]
    _copy_tokenizer(dest)
    return dest


class _Head(torch.nn.Module):
    """Exposes the one output the descriptor names, with the two inputs the server feeds."""

    def __init__(self, model: torch.nn.Module, output: str) -> None:
        super().__init__()
        self.model = model
        self.output = output

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return getattr(self.model(input_ids=input_ids, attention_mask=attention_mask), self.output)  # type: ignore[no-any-return]


def export_onnx(source: Path, dest: Path) -> Path:
    """What ``fmstack compress --export onnx`` produces: model.onnx + tokenizer + fmstack.json."""
    from transformers import AutoModel, AutoModelForSequenceClassification

    classifier = (source / "config.json").read_text().find("ForSequenceClassification") >= 0
    model = (AutoModelForSequenceClassification if classifier else AutoModel).from_pretrained(source).eval()
    output = "logits" if classifier else "last_hidden_state"
    dest.mkdir(parents=True)
    ids = torch.ones(2, 8, dtype=torch.long)
    batch, seq = torch.export.Dim("batch"), torch.export.Dim("seq")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        program = torch.onnx.export(
            _Head(model, output),
            (ids, torch.ones_like(ids)),
            dynamo=True,
            input_names=["input_ids", "attention_mask"],
            output_names=[output],
            dynamic_shapes=({0: batch, 1: seq}, {0: batch, 1: seq}),
        )
    assert program is not None
    program.save(str(dest / "model.onnx"))
    _copy_tokenizer(dest)
    descriptor = ServableModel(
        format="onnx",
        task="classification" if classifier else "embedding",
        labels=LABELS if classifier else [],
        max_length=64,
        output=output,
    )
    write_descriptor(dest, descriptor)
    return dest


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="session")
def model_dirs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Folders of every tiny model the tests serve (built once: the ONNX export takes seconds)."""
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("serve-models")
    dirs = {
        "classifier": build_classifier(root / "classifier", seed=0),
        "classifier-v2": build_classifier(root / "classifier-v2", seed=1),
        "encoder": build_encoder(root / "encoder", seed=0),
    }
    dirs["classifier-onnx"] = export_onnx(dirs["classifier"], root / "classifier-onnx")
    dirs["encoder-onnx"] = export_onnx(dirs["encoder"], root / "encoder-onnx")
    return dirs


@pytest.fixture
def served_hub(hub: Hub, model_dirs: dict[str, Path]) -> Hub:
    """A hub with acme/intent:1 (classifier, alias production), acme/intent:2 (another classifier),
    acme/intent-onnx, acme/embed (PyTorch encoder) and acme/embed-onnx."""
    hub.push("acme/intent", model_dirs["classifier"], "model", alias="production")
    hub.push("acme/intent", model_dirs["classifier-v2"], "model")
    hub.push("acme/intent-onnx", model_dirs["classifier-onnx"], "model")
    hub.push("acme/embed", model_dirs["encoder"], "model")
    hub.push("acme/embed-onnx", model_dirs["encoder-onnx"], "model")
    return hub


def settings(models: list[str], **overrides: object) -> ServeSettings:
    """Server settings for tests: loopback, a free port, one compute thread, aliases checked often."""
    base: dict[str, object] = {"port": 0, "threads": 1, "poll_aliases_s": 0.2, "max_wait_ms": 2.0}
    return ServeSettings(models=models, **{**base, **overrides})  # type: ignore[arg-type]


@pytest.fixture
def serve(served_hub: Hub) -> Iterator[object]:
    """``serve(refs, **settings)`` starts a server on the test hub and stops it after the test."""
    running: list[RunningServer] = []

    def start(models: list[str], **overrides: object) -> RunningServer:
        server = start_server(settings(models, **overrides), served_hub.settings)
        running.append(server)
        return server

    yield start
    for server in running:
        server.stop()
