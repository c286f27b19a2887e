from __future__ import annotations

import math

import numpy as np
import pytest

from fmstack.train.metrics import classification_metrics, perplexity, recall_at_k


def test_classification_metrics_with_per_class_report() -> None:
    m = classification_metrics(np.array([0, 1, 1, 2]), np.array([0, 1, 2, 2]), ["a", "b", "c"])
    assert m["accuracy"] == 0.75
    assert m["per_class"]["c"]["recall"] == 0.5
    assert 0 < m["macro_f1"] < 1


def test_multi_label_accuracy_is_exact_match() -> None:
    m = classification_metrics(
        np.array([[1, 0], [1, 1]]), np.array([[1, 0], [0, 1]]), ["a", "b"], multi_label=True
    )
    assert m["accuracy"] == 0.5


def test_recall_at_k_and_self_exclusion() -> None:
    q = np.eye(3)
    keys = np.array([[1.0, 0, 0], [0, 0, 1.0], [0, 1.0, 0]])
    r = recall_at_k(q, keys, [{0}, {2}, {0}], ks=(1, 2))
    assert r["recall@1"] == pytest.approx(2 / 3) and r["recall@2"] == pytest.approx(1.0)
    texts = np.array([[1.0, 0.0], [0.8, 0.6], [0.0, 1.0]])  # 0 and 1 are close; 2 is far
    same = recall_at_k(texts, texts, [{1}, {0}, set()], ks=(1,), exclude_self=True)
    assert same["recall@1"] == 1.0  # without exclusion every text would retrieve itself first


def test_perplexity() -> None:
    assert perplexity(2 * math.log(4), 2)["perplexity"] == pytest.approx(4.0)
