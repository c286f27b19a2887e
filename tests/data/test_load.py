from __future__ import annotations

import datasets
import pyarrow as pa
import pytest

from fmstack.data import load
from fmstack.errors import InvalidInput, NotFound
from fmstack.hub import Hub


def test_load_as_datasets_and_arrow(hub: Hub, raw_ref: str) -> None:
    ds = load(raw_ref, split="train", hub=hub)
    assert (
        isinstance(ds, datasets.Dataset) and ds.num_rows == 646 and set(ds.column_names) == {"text", "label"}
    )
    table = load("acme/raw", split="train", format="arrow", hub=hub)
    assert isinstance(table, pa.Table) and table.num_rows == 646
    assert ds[0]["text"] == table.column("text")[0].as_py()
    # the label mapping, as datasets.load_dataset("parquet") on the shards gives it
    names = ds.features["label"].names
    assert isinstance(ds.features["label"], datasets.ClassLabel) and names == sorted(set(names))
    assert [names[i] for i in ds["label"]] == table.column("label").to_pylist()


def test_load_errors(hub: Hub, raw_ref: str) -> None:
    with pytest.raises(NotFound, match="no split 'test'"):
        load(raw_ref, split="test", hub=hub)
    with pytest.raises(InvalidInput, match="bad format"):
        load(raw_ref, format="pandas", hub=hub)  # type: ignore[arg-type]
