"""``--method setfit`` (methods/setfit.py, methods/contrastive_encoder.py): class-balanced batches, the
contrastive phase pulling a class together, the spec's rules, and end to end through the CLI to a
version that plain transformers loads with the same predictions. The registry's contract test runs it
through one step, save and reload too."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import pytest
import torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer

from fmstack.cli.main import main
from fmstack.errors import InvalidInput
from fmstack.hub import Hub
from fmstack.train.inference import load
from fmstack.train.methods.contrastive_encoder import (
    LABELLED_REPEATS,
    PER_CLASS,
    TEACHER_C,
    balanced_batches,
    fit_teacher,
    guesses,
    over_neighbours,
    self_training_rows,
    train_student,
    tune_encoder,
)
from fmstack.train.prepare import label_name_text
from fmstack.train.spec import parse_spec
from tests.train.conftest import push_dataset, push_text, texts


def test_batches_are_whole_class_groups_and_cover_every_row_once() -> None:
    labels = [i % 5 for i in range(43)]  # uneven classes: 9, 9, 9, 8, 8
    batches = balanced_batches(labels, 16, random.Random(0))
    assert sorted(i for b in batches for i in b) == list(range(43))
    for batch in batches:
        assert len(batch) <= 16
        per_class = [sum(labels[i] == c for i in batch) for c in range(5)]
        assert max(per_class) <= 2 * PER_CLASS  # whole groups; two groups of a class at most meet
    assert any(sum(labels[i] == labels[j] for j in b) > 1 for b in batches for i in b)  # positives met


def test_contrastive_tuning_pulls_a_class_together(hub: Hub, tiny_bert: str, topics: str) -> None:
    from fmstack.train.prepare import prepare

    prep = prepare(
        hub, parse_spec({"task": "classification", "method": "setfit", "base": tiny_bert, "data": topics})
    )
    encoder = prep.model.encoder  # type: ignore[union-attr]
    rows = prep.train_rows[:24]

    def collate(r: list[dict[str, object]]) -> dict[str, torch.Tensor]:
        return prep.task.collate(r, prep.ctx)  # type: ignore[no-any-return]

    losses = tune_encoder(encoder, rows, collate, "cpu", epochs=6, lr=1e-2, batch_size=12, seed=0)
    assert losses[-1] < losses[0] * 0.8, losses


def test_the_student_pass_fits_the_encoder_to_the_guesses(hub: Hub, tiny_bert: str, topics: str) -> None:
    """The noisy-student step trains the encoder (not only its temporary head) on the labels given."""
    from fmstack.train.prepare import prepare

    prep = prepare(
        hub, parse_spec({"task": "classification", "method": "setfit", "base": tiny_bert, "data": topics})
    )
    encoder = prep.model.encoder  # type: ignore[union-attr]
    rows = prep.train_rows[:32]
    head = torch.nn.Linear(int(prep.model.config.hidden_size), 3)  # type: ignore[union-attr, arg-type]
    before = [p.detach().clone() for p in encoder.parameters() if p.requires_grad]

    def collate(r: list[dict[str, object]]) -> dict[str, torch.Tensor]:
        return prep.task.collate(r, prep.ctx)  # type: ignore[no-any-return]

    losses = [
        train_student(encoder, rows, head, collate, "cpu", batch_size=8, seed=0, lr=3e-3) for _ in range(8)
    ]
    assert losses[-1] < losses[0] * 0.8, losses
    after = [p for p in encoder.parameters() if p.requires_grad]
    assert any(not torch.equal(a, b) for a, b in zip(after, before, strict=True))


def test_rules_name_the_options_setfit_cannot_honour() -> None:
    base = {"task": "classification", "method": "setfit", "base": "a/b", "data": "a/d"}
    with pytest.raises(InvalidInput) as info:
        parse_spec({**base, "pooling": "cls", "head_lr": 1e-3, "setfit_epochs": 0})
    message = str(info.value)
    assert "pooling: setfit" in message and "head_lr: setfit" in message and "setfit_epochs" in message
    with pytest.raises(InvalidInput, match="method: 'setfit' does not apply to task 'embedding'"):
        parse_spec({**base, "task": "embedding"})


def test_another_methods_options_are_refused_not_ignored() -> None:
    base = {"task": "classification", "base": "a/b", "data": "a/d"}
    with pytest.raises(InvalidInput) as info:
        parse_spec(
            {**base, "method": "full", "unlabeled": "a/u", "label_names_as_examples": True, "lora_r": 4}
        )
    message = str(info.value)
    assert "unlabeled: applies to setfit only; method 'full' has no unlabeled" in message
    assert "label_names_as_examples: applies to setfit only" in message
    assert "lora_r: applies to lora only" in message
    parse_spec({**base, "method": "setfit", "unlabeled": "a/u", "label_names_as_examples": True})


def test_label_names_read_as_words() -> None:
    assert label_name_text("card_arrival") == "card arrival"
    assert label_name_text("  top-up__failed ") == "top up failed"


def test_self_training_labels_the_unlabelled_rows_by_the_teacher() -> None:
    g = torch.Generator().manual_seed(0)
    centres = torch.eye(3, 8) * 4
    labelled = [
        {"features": centres[c] + 0.3 * torch.randn(8, generator=g), "label": c} for c in (0, 0, 1, 1, 2, 2)
    ]
    truth = [i % 3 for i in range(30)]
    unlabelled = [{"features": centres[c] + 0.3 * torch.randn(8, generator=g)} for c in truth]
    rows = self_training_rows(labelled, unlabelled, guesses(fit_teacher(labelled, 3), unlabelled))
    assert len(rows) == LABELLED_REPEATS * len(labelled) + len(unlabelled)
    assert [r["label"] for r in rows[-30:]] == truth  # well separated: the teacher gets every one
    assert all(torch.equal(r["features"], u["features"]) for r, u in zip(rows[-30:], unlabelled, strict=True))


@pytest.mark.parametrize("present", [(0, 1, 2), (0, 2)])
def test_the_teacher_as_a_layer_predicts_like_the_regression(present: tuple[int, ...]) -> None:
    """The teacher is scikit-learn's fit carried into torch (it is also the student's first head):
    the same predictions, binary fits (one row of coefficients) included, and a class without rows
    (1, in the binary case) never guessed."""
    from sklearn.linear_model import LogisticRegression

    g = torch.Generator().manual_seed(0)
    rows: list[dict[str, Any]] = [
        {"features": torch.randn(6, generator=g) + 2 * torch.eye(3, 6)[c], "label": c} for c in present * 8
    ]
    probe = [{"features": torch.randn(6, generator=g)} for _ in range(200)]
    teacher = fit_teacher(rows, 3)
    unit = torch.nn.functional.normalize(torch.stack([r["features"] for r in rows]).double(), dim=-1)
    fit = LogisticRegression(C=TEACHER_C, max_iter=3000).fit(unit.numpy(), [r["label"] for r in rows])
    probe_unit = torch.nn.functional.normalize(torch.stack([r["features"] for r in probe]).double(), dim=-1)
    assert guesses(teacher, probe, neighbours=0) == fit.predict(probe_unit.numpy()).tolist()
    assert set(guesses(teacher, probe)) <= set(present)


def test_neighbours_outvote_an_unsure_guess() -> None:
    """Two tight clusters: the one row whose own probabilities lean the wrong way (0.6 against 0.4)
    takes its neighbours' class; a row the teacher is sure of keeps its own and pulls two unsure
    neighbours to it; a lone row keeps its own probabilities."""
    unit = torch.nn.functional.normalize(
        torch.tensor([[1.0, 0.0], [1.0, 0.05], [1.0, -0.05], [0.0, 1.0], [0.05, 1.0], [-0.05, 1.0]]), dim=-1
    )
    probabilities = torch.tensor([[0.4, 0.6], [0.9, 0.1], [0.9, 0.1], [0.1, 0.9], [0.1, 0.9], [0.1, 0.9]])
    smoothed = over_neighbours(probabilities, unit, neighbours=2)
    assert smoothed.argmax(dim=-1).tolist() == [0, 0, 0, 1, 1, 1]
    assert torch.allclose(smoothed.sum(dim=-1), torch.ones(6))  # still distributions
    assert torch.allclose(smoothed[0], 0.3 * probabilities[0] + 0.7 * probabilities[1:3].mean(dim=0))
    sure = torch.tensor([[0.0, 1.0], [0.55, 0.45], [0.55, 0.45]])
    assert over_neighbours(sure, unit[:3], neighbours=2).argmax(dim=-1).tolist() == [1, 1, 1]
    assert torch.equal(over_neighbours(probabilities[:1], unit[:1], neighbours=5), probabilities[:1])


def test_finetune_setfit_end_to_end_loads_in_transformers(
    hub: Hub, tiny_bert: str, topics: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["train", "finetune", "--method", "setfit", "--base", tiny_bert, "--data", topics]
    args += ["--setfit-epochs", "3", "--setfit-lr", "1e-3", "--head", "cosine", "-b", "16", "--lr", "1e-2"]
    assert main([*args, "--output", "acme/few", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["output"]["repo"] == "acme/few" and out["output"]["kind"] == "model"
    run = hub.runs.get(out["run_id"])
    assert run.spec["setfit_epochs"] == 3 and run.spec["method"] == "setfit"
    assert out["metrics"]["accuracy"] >= 0.6  # 3 classes (chance 1/3), a random 2-layer encoder, 64 rows

    folder = tmp_path / "pulled"
    hub.pull("acme/few:1", folder)
    plain = AutoModelForSequenceClassification.from_pretrained(str(folder), trust_remote_code=True).eval()
    tokenizer = AutoTokenizer.from_pretrained(str(folder))
    batch = tokenizer(texts(6, seed=9)[0], padding=True, return_tensors="pt")
    ours = load(hub, "acme/few:1").model
    with torch.no_grad():
        assert torch.allclose(plain(**batch).logits, ours(**batch).logits, atol=1e-5)
    assert plain.config.id2label == {0: "food", 1: "money", 2: "sport"}


def test_setfit_with_label_names_and_unlabelled_texts(
    hub: Hub, tiny_bert: str, topics: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Self-training on a text-only dataset and the names as rows, through the CLI: the run records
    the unlabelled dataset as an input, and the version's lineage names it beside the data."""
    pool = push_text(hub, tmp_path, n=60)
    args = [
        "train",
        "finetune",
        "--method",
        "setfit",
        "--base",
        tiny_bert,
        "--data",
        topics,
        "--head",
        "cosine",
    ]
    args += ["--setfit-epochs", "3", "--setfit-lr", "1e-3", "-b", "16", "--lr", "1e-2", "--epochs", "2"]
    args += ["--unlabeled", pool, "--label-names-as-examples", "--output", "acme/few", "--json"]
    assert main(args) == 0
    out = json.loads(capsys.readouterr().out)
    run = hub.runs.get(out["run_id"])
    assert run.spec["unlabeled"] == "test/text:1" and run.spec["label_names_as_examples"] is True
    parents = {p.ref for p in hub.lineage("acme/few:1").upstream.parents}
    assert {"test/text:1", "test/topics:1"} <= parents
    # 64 labelled rows + 3 names, 3 times each, and 60 pseudo-labelled: 2 epochs of 16 whole batches
    assert out["steps"] == 2 * ((LABELLED_REPEATS * 67 + 60) // 16)
    assert out["metrics"]["accuracy"] >= 0.6


def test_unlabelled_data_without_texts_is_refused_before_a_run(
    hub: Hub, tiny_bert: str, topics: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import pyarrow as pa

    ids = push_dataset(hub, tmp_path, "test/ids", {"train": pa.table({"input_ids": [[1, 2, 3]]})})
    args = ["train", "finetune", "--method", "setfit", "--base", tiny_bert, "--data", topics]
    assert main([*args, "--unlabeled", ids]) == 1
    err = capsys.readouterr().err
    assert "--unlabeled: test/ids:1 needs a train split with a text column" in err
    assert hub.runs.recent() == []
    assert main([*args, "--unlabeled", tiny_bert]) == 1
    assert "--unlabeled" in capsys.readouterr().err
