"""``fmstack train add-class`` (train/add_class.py): the imprinted head row, and end to end through the
CLI: a classifier trained on two topics gains the third from a few examples, as a new version with
lineage, an alias moved, the old classes' weights untouched, and the same logits in transformers."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pytest
import torch
from torch import nn
from transformers import AutoModelForSequenceClassification, AutoTokenizer

from fmstack.cli.main import main
from fmstack.hub import Hub
from fmstack.train.add_class import imprint
from fmstack.train.inference import load
from fmstack.train.pooled import CosineClassifier
from tests.train.conftest import push_dataset, texts


def test_a_cosine_head_gains_the_unit_prototype() -> None:
    head = CosineClassifier(4, 2, 20.0)
    features = torch.tensor([[2.0, 0, 0, 0], [0, 3.0, 0, 0]])
    grown = imprint(head, features)
    assert grown.weight.shape == (3, 4) and torch.equal(grown.weight[:2], head.weight)
    assert torch.allclose(grown.weight[2], torch.tensor([1.0, 1.0, 0, 0]) / 2**0.5)
    assert grown(torch.tensor([[1.0, 1.0, 0, 0]])).argmax() == 2  # nearest to the new prototype


def test_a_linear_head_gains_a_row_on_the_trained_rows_scale() -> None:
    head = nn.Linear(3, 2)
    with torch.no_grad():
        head.weight.copy_(torch.tensor([[3.0, 0, 0], [0, 1.0, 0]]))
        head.bias.copy_(torch.tensor([1.0, -1.0]))
    grown = imprint(head, torch.tensor([[0, 0, 5.0]]))
    assert grown.out_features == 3 and torch.equal(grown.weight[:2], head.weight)
    assert torch.allclose(grown.weight[2], torch.tensor([0, 0, 2.0]))  # mean row norm (3 + 1) / 2
    assert torch.allclose(grown.bias, torch.tensor([1.0, -1.0, 0.0]))


def _two_topics(hub: Hub, root: Path) -> str:
    def table(n: int, seed: int) -> pa.Table:
        t, labels = texts(n, seed)
        keep = [i for i, label in enumerate(labels) if label != "sport"]
        return pa.table({"text": [t[i] for i in keep], "label": [labels[i] for i in keep]})

    splits = {"train": table(96, 1), "validation": table(24, 2)}
    return push_dataset(hub, root, "test/two-topics", splits, labels=["food", "money"])


def test_add_class_end_to_end(
    hub: Hub, tiny_bert: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = _two_topics(hub, tmp_path)
    train = ["train", "finetune", "--base", tiny_bert, "--data", data, "--head", "cosine"]
    assert main([*train, "-b", "8", "--epochs", "2", "--lr", "1e-2", "-o", "acme/intents", "--json"]) == 0
    capsys.readouterr()
    hub.tag("acme/intents:1", "production")
    sport, labels = texts(30, seed=5)
    sport = [t for t, label in zip(sport, labels, strict=True) if label == "sport"]
    examples = tmp_path / "sport.txt"
    examples.write_text("\n".join(sport[:5]) + "\n\n" + sport[0] + "\n")  # a blank line and a repeat

    command = ["train", "add-class", "acme/intents@production", "--label", "sport", "-e", str(examples)]
    assert main([*command, "--alias", "production", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["output"]["number"] == 2 and out["examples"] == 5 and out["labels"] == 3
    assert hub.resolve("acme/intents@production").number == 2
    run = hub.runs.get(out["run_id"])
    assert run.kind == "add-class" and run.inputs == ["acme/intents:1"] and run.outputs == ["acme/intents:2"]
    assert [p.ref for p in hub.lineage("acme/intents:2").upstream.parents] == ["acme/intents:1"]

    old, new = load(hub, "acme/intents:1"), load(hub, "acme/intents:2")
    assert new.labels == ["food", "money", "sport"]
    batch = old.tokenizer(texts(12, seed=7)[0] + sport[5:], padding=True, return_tensors="pt")
    with torch.no_grad():
        before, after = old.model(**batch).logits, new.model(**batch).logits
    assert torch.allclose(before, after[:, :2], atol=1e-5)  # the old classes answer as before
    assert (after[-len(sport[5:]) :].argmax(dim=1) == 2).float().mean() >= 0.6  # unseen sport texts

    folder = tmp_path / "pulled"
    hub.pull("acme/intents:2", folder)
    plain = AutoModelForSequenceClassification.from_pretrained(str(folder), trust_remote_code=True).eval()
    assert plain.config.id2label[2] == "sport"
    plain_batch = AutoTokenizer.from_pretrained(str(folder))(sport[5:], padding=True, return_tensors="pt")
    with torch.no_grad():
        assert torch.allclose(plain(**plain_batch).logits, new.model(**plain_batch).logits, atol=1e-5)


def test_add_class_refuses_what_it_cannot_do(
    hub: Hub, tiny_bert: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    examples = tmp_path / "ex.txt"
    examples.write_text("ball goal\n")
    assert main(["train", "add-class", tiny_bert, "--label", "sport", "-e", str(examples)]) == 1
    assert "embedding model; add-class adds a class to a single-label classifier" in capsys.readouterr().err
    assert main(["train", "add-class", tiny_bert, "--label", "x", "-e", str(tmp_path / "none.txt")]) == 1
    assert "no examples file at" in capsys.readouterr().err
