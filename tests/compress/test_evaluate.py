"""The eval-row sample behind ``--eval-limit`` (the rest of evaluate.py runs in test_pipeline.py)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pyarrow as pa

from fmstack.compress.evaluate import load_eval, sample_rows
from fmstack.data import format as dataformat
from fmstack.hub import Hub
from tests.tiny import LABELS


def test_load_eval_limit_keeps_every_class_of_a_split_sorted_by_label(hub: Hub, tmp_path: Path) -> None:
    labels = sorted(LABELS * 20)  # the first rows are all one class
    table = pa.table({"text": [f"text {i}" for i in range(len(labels))], "label": labels})
    info = dataformat.write_split(tmp_path, "test", [table])
    manifest = dataformat.DatasetManifest(splits={"test": info}, columns=["text", "label"], labels=LABELS)
    dataformat.write_manifest(tmp_path, manifest)
    ref = hub.push("acme/sorted", tmp_path, "dataset").ref
    data = load_eval(hub, ref, "test", 4 * len(LABELS), LABELS)
    assert data.labels is not None and Counter(data.labels) == {i: 4 for i in range(len(LABELS))}
    assert data.texts == load_eval(hub, ref, "test", 4 * len(LABELS), LABELS).texts


def test_eval_limit_samples_across_the_split_not_its_first_rows() -> None:
    labels: list[object] = ["a"] * 600 + ["b"] * 300 + ["c"] * 100  # written in label order
    rows = sample_rows(1000, 100, labels, seed=0)
    assert len(rows) == 100 and len(set(rows.tolist())) == 100
    assert np.all(np.diff(rows) > 0)  # kept in the split's order
    assert Counter(labels[i] for i in rows) == {"a": 60, "b": 30, "c": 10}  # the split's class mix
    assert np.array_equal(rows, sample_rows(1000, 100, labels, seed=0))
    assert not np.array_equal(rows, sample_rows(1000, 100, labels, seed=1))


def test_eval_limit_rounds_shares_by_largest_remainder_and_samples_unlabelled_rows() -> None:
    labels: list[object] = ["a"] * 5 + ["b"] * 3 + ["c"] * 2
    assert Counter(labels[i] for i in sample_rows(10, 4, labels, seed=0)) == {"a": 2, "b": 1, "c": 1}
    rows = sample_rows(1000, 10, None, seed=3)
    assert len(set(rows.tolist())) == 10 and rows.max() >= 10  # not simply rows 0-9
    assert sample_rows(5, 10, None, seed=3).tolist() == [0, 1, 2, 3, 4]
