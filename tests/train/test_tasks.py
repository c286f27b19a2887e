"""Task behaviour beyond the contract table: multi-label classification, embeddings from labels."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa

from fmstack.hub import Hub
from tests.train.conftest import TOPICS, fit, push_dataset, texts


def test_multi_label_classification_learns_and_reports(hub: Hub, tiny_bert: str, tmp_path: Path) -> None:
    def table(n: int, seed: int) -> pa.Table:
        a, la = texts(n, seed)
        b, lb = texts(n, seed + 50)
        labels = [sorted({x, y}) for x, y in zip(la, lb[1:] + lb[:1], strict=True)]
        return pa.table(
            {"text": [f"{x} {y}" for x, y in zip(a, b[1:] + b[:1], strict=True)], "label": labels}
        )

    data = push_dataset(
        hub,
        tmp_path,
        "test/multi",
        {"train": table(96, 1), "validation": table(24, 2)},
        labels=sorted(TOPICS),
        multi_label=True,
    )
    _, result = fit(
        hub,
        tmp_path / "ck",
        task="classification",
        method="full",
        base=tiny_bert,
        data=data,
        batch_size=8,
        epochs=10,
        lr=3e-3,
    )
    assert result.final["accuracy"] > 0.5  # exact match of the label set; chance is about 1/7
    assert set(result.final["per_class"]) == set(TOPICS)


def test_embedding_from_labels_improves_recall(hub: Hub, tiny_bert: str, topics: str, tmp_path: Path) -> None:
    common = {
        "task": "embedding",
        "method": "full",
        "base": tiny_bert,
        "data": topics,
        "batch_size": 16,
        "lr": 3e-3,
    }
    _, before = fit(hub, tmp_path / "a", **{**common, "lr": 1e-9, "max_steps": 1})  # ~ the untrained base
    _, after = fit(hub, tmp_path / "b", **common, epochs=8)
    assert after.final["recall@1"] > before.final["recall@1"]
    assert after.final["recall@1"] >= 0.9


def test_a_contrastive_embedding_model_is_the_base_of_a_classifier(
    hub: Hub, tiny_bert: str, topics: str, tmp_path: Path
) -> None:
    """SetFit-style: contrastive fine-tuning on the labels, then a classifier (a fresh mean-pooled head,
    here trained with a head learning rate of its own and label smoothing) over that encoder."""
    from fmstack.train.run import train
    from fmstack.train.spec import parse_spec

    common = {"base": tiny_bert, "data": topics, "batch_size": 16, "lr": 3e-3, "epochs": 4}
    scl = train(hub, parse_spec({**common, "task": "embedding", "method": "full", "output": "t/scl"}))
    assert scl.output.kind == "model"
    _, result = fit(
        hub,
        tmp_path / "ck",
        **{**common, "base": scl.output.ref, "lr": 1e-3},
        task="classification",
        method="ia3",
        head_lr=1e-2,
        label_smoothing=0.1,
    )
    assert result.final["accuracy"] >= 0.9
    assert result.final["loss"] > 0  # evaluation reports the plain cross-entropy
