"""The on-disk label column: ClassLabel ids with their names in the schema, read back as strings."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from fmstack.data import format as dataformat

NAMES = ["food", "money", "sport"]


def _write(folder: Path, table: pa.Table, multi_label: bool = False, split: str = "train") -> None:
    info = dataformat.write_split(folder, split, [table])
    manifest = dataformat.DatasetManifest(
        splits={split: info}, columns=table.column_names, labels=NAMES, multi_label=multi_label
    )
    dataformat.write_manifest(folder, manifest)


def test_labels_are_stored_as_ids_and_read_back_as_names(tmp_path: Path) -> None:
    table = pa.table({"text": ["a", "b", "c"], "label": ["sport", None, "food"]})
    _write(tmp_path, table)
    stored = pq.read_table(tmp_path / "data/train-00000.parquet")
    assert stored.column("label").to_pylist() == [2, None, 0]
    assert dataformat.read_split(tmp_path, "train").equals(table)
    (batch,) = dataformat.iter_batches(tmp_path, "train")
    assert batch.column("label").to_pylist() == ["sport", None, "food"]


def test_multi_label_lists_of_a_sliced_table_round_trip(tmp_path: Path) -> None:
    table = pa.table({"text": ["x", "a", "b", "c"], "label": [["food"], ["sport", "food"], [], None]}).slice(
        1
    )
    _write(tmp_path, table, multi_label=True)
    stored = pq.read_table(tmp_path / "data/train-00000.parquet")
    assert stored.column("label").to_pylist() == [[2, 0], [], None]
    assert dataformat.read_split(tmp_path, "train").column("label").to_pylist() == [
        ["sport", "food"],
        [],
        None,
    ]


def test_a_label_outside_the_manifest_leaves_the_split_as_strings(tmp_path: Path) -> None:
    table = pa.table({"text": ["a", "b"], "label": ["sport", "weather"]})
    _write(tmp_path, table, split="rejected")
    _write(tmp_path / "other", table)
    for folder, split in ((tmp_path, "rejected"), (tmp_path / "other", "train")):
        assert pq.read_table(folder / f"data/{split}-00000.parquet").column("label").type == pa.string()
        assert dataformat.read_split(folder, split).equals(table)


def test_shards_written_before_with_string_labels_read_unchanged(tmp_path: Path) -> None:
    table = pa.table({"text": ["a"], "label": ["money"]})
    info = dataformat.write_split(tmp_path, "train", [table])  # no write_manifest: the old layout
    (tmp_path / dataformat.MANIFEST).write_text(
        dataformat.DatasetManifest(splits={"train": info}, labels=NAMES).model_dump_json()
    )
    assert pq.read_table(tmp_path / "data/train-00000.parquet").column("label").type == pa.string()
    assert dataformat.read_split(tmp_path, "train").equals(table)
