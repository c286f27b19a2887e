"""The on-disk form of a dataset version, shared by every producer and consumer of datasets.

A dataset version is a folder:

    dataset.json                         DatasetManifest below (splits, shards, columns, labels)
    data/<split>-<i:05d>.parquet         zstd-compressed Parquet shards, in order

Canonical columns: ``text`` (str), optional ``text_pair`` (str), optional ``label`` (str; its id is
the index in ``DatasetManifest.labels``), and, once tokenised, ``input_ids`` / ``attention_mask``
(list<int32>). The ``rejected`` split, when present, holds rows that could not be used, with
``reason``, ``source`` and ``line`` columns.

On disk the ``label`` column is a Hugging Face ``datasets.ClassLabel``: int64 ids (list<int64> for
multi-label data) and the label names, in manifest order, in the Parquet schema's ``huggingface``
metadata, so ``datasets.load_dataset("parquet", data_files=...)`` on pulled shards gets the mapping.
``write_manifest`` stores them so; ``read_split`` and ``iter_batches`` give the names back as strings
(``decode_labels``), which every step of fmstack works with. Shards written before store strings, and
read the same.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, Literal

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from pydantic import BaseModel, ConfigDict, ValidationError

from fmstack.errors import InvalidInput, NotFound

MANIFEST = "dataset.json"
SPLIT_ORDER = ("train", "validation", "test", "rejected")


class SplitInfo(BaseModel):
    model_config = ConfigDict(extra="forbid")
    rows: int
    shards: list[str]


class DatasetManifest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    schema_version: Literal[1] = 1
    splits: dict[str, SplitInfo] = {}
    columns: list[str] = []
    labels: list[str] = []
    multi_label: bool = False
    tokenizer: str | None = None  # hub ref of the model whose tokenizer produced input_ids
    block_size: int | None = None  # set by `pack`: every row holds exactly this many tokens


LABEL = "label"
HF_METADATA = b"huggingface"  # where `datasets` keeps its features in an Arrow schema


def shard_name(split: str, index: int) -> str:
    return f"data/{split}-{index:05d}.parquet"


def write_shard(folder: Path, split: str, index: int, table: pa.Table) -> str:
    name = shard_name(split, index)
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    _write_parquet(path, table)
    return name


def _write_parquet(path: Path, table: pa.Table) -> None:
    # Fixed writer settings and no timestamps in metadata keep equal tables byte-identical,
    # so the same input and spec always give the same version digest.
    pq.write_table(table, path, compression="zstd", write_statistics=True, store_schema=True)


def write_split(folder: Path, split: str, tables: Iterable[pa.Table]) -> SplitInfo:
    shards, rows = [], 0
    for index, table in enumerate(tables):
        shards.append(write_shard(folder, split, index, table))
        rows += table.num_rows
    return SplitInfo(rows=rows, shards=shards)


def write_manifest(folder: Path, manifest: DatasetManifest) -> None:
    """Write ``dataset.json``, and store the labels of the shards it lists as ``ClassLabel`` ids."""
    ordered = sorted(manifest.splits, key=lambda s: (SPLIT_ORDER.index(s) if s in SPLIT_ORDER else 99, s))
    manifest = manifest.model_copy(update={"splits": {s: manifest.splits[s] for s in ordered}})
    if manifest.labels:
        for split, info in manifest.splits.items():
            if split != "rejected":  # rejected rows keep the labels as they came, valid or not
                _store_class_labels(folder, info.shards, manifest.labels)
    (folder / MANIFEST).write_text(json.dumps(manifest.model_dump(), indent=2, sort_keys=False) + "\n")


def _store_class_labels(folder: Path, shards: list[str], names: list[str]) -> None:
    # Shards are written as rows stream in, before the label set is known; rewriting them here keeps
    # every producer unchanged. A split with a label outside `names` stays as strings, in full.
    # A first pass reads only the labels; the rewrite streams batches (bounded memory, like ingest).
    if all(encode_labels(_labels_of(folder / shard), names) is not None for shard in shards):
        for shard in shards:
            _rewrite_with_ids(folder / shard, names)


def _rewrite_with_ids(path: Path, names: list[str]) -> None:
    with pq.ParquetFile(path) as file:
        schema = file.schema_arrow
        target = encode_labels(schema.empty_table(), names)
        if target is None or target.schema.equals(schema, check_metadata=True):
            return  # no label column, or ids already
        part = path.with_name(path.name + ".part")
        with pq.ParquetWriter(
            part, target.schema, compression="zstd", write_statistics=True, store_schema=True
        ) as writer:
            for batch in file.iter_batches(batch_size=65_536):
                table = pa.Table.from_batches([batch]).replace_schema_metadata(schema.metadata)
                writer.write_table(encode_labels(table, names))
    part.replace(path)


def _labels_of(path: Path) -> pa.Table:
    return pq.read_table(path, columns=[LABEL]) if LABEL in pq.read_schema(path).names else pa.table({})


def encode_labels(table: pa.Table, names: list[str]) -> pa.Table | None:
    """``table`` with its string ``label`` column (or list<string>, multi-label) as ids into ``names``
    and the ``ClassLabel`` feature in its schema metadata; unchanged if it has no such column; None if
    some label is not in ``names``."""
    if LABEL not in table.column_names:
        return table
    column = table.column(LABEL).combine_chunks()
    nested = pa.types.is_list(column.type)
    values = column.flatten() if nested else column
    if not pa.types.is_string(values.type) and not pa.types.is_large_string(values.type):
        return table  # already ids, or not labels fmstack wrote
    ids = pc.index_in(values, value_set=pa.array(names, pa.string())).cast(pa.int64())
    if ids.null_count != values.null_count:
        return None
    feature: dict[str, Any] = {"names": names, "_type": "ClassLabel"}
    if nested:
        ids = pa.ListArray.from_arrays(_offsets(column), ids, mask=column.is_null())
        feature = {"feature": feature, "_type": "List"}
    metadata = {
        **(table.schema.metadata or {}),
        HF_METADATA: json.dumps({"info": {"features": {LABEL: feature}}}),
    }
    index = table.column_names.index(LABEL)
    return table.set_column(index, LABEL, ids).replace_schema_metadata(metadata)


def decode_labels(table: pa.Table) -> pa.Table:
    """``table`` with a ``ClassLabel`` ``label`` column (see the module docstring) back as names."""
    metadata = table.schema.metadata or {}
    feature = _label_feature(metadata)
    if feature is None or LABEL not in table.column_names:
        return table
    nested = feature.get("_type") in ("List", "Sequence")
    names = pa.array((feature["feature"] if nested else feature)["names"], pa.string())
    column = table.column(LABEL).combine_chunks()
    if nested:
        values = pc.take(names, column.flatten())
        decoded = pa.ListArray.from_arrays(_offsets(column), values, mask=column.is_null())
    else:
        decoded = pc.take(names, column)
    rest = {k: v for k, v in metadata.items() if k != HF_METADATA} or None
    return table.set_column(table.column_names.index(LABEL), LABEL, decoded).replace_schema_metadata(rest)


def _offsets(column: pa.ListArray) -> pa.Array:
    """List offsets into ``column.flatten()`` (a sliced array's own offsets start past zero)."""
    return pc.subtract(column.offsets, column.offsets[0])


def class_label_names(metadata: dict[bytes, bytes] | None, column: str) -> list[str] | None:
    """The names of a ``ClassLabel`` column (or list of them) that ``datasets`` described in a Parquet
    schema's metadata, in id order; None when it described no such column."""
    feature = _label_feature(metadata or {}, column)
    if feature is None:
        return None
    names = feature.get("feature", feature).get("names")
    return [str(n) for n in names] if isinstance(names, list) else None


def _label_feature(metadata: dict[bytes, bytes], column: str = LABEL) -> dict[str, Any] | None:
    if HF_METADATA not in metadata:
        return None
    try:
        features = json.loads(metadata[HF_METADATA])["info"]["features"]
    except (ValueError, KeyError, TypeError):
        return None
    feature = features.get(column) if isinstance(features, dict) else None
    inner = feature.get("feature", feature) if isinstance(feature, dict) else None
    return feature if isinstance(inner, dict) and inner.get("_type") == "ClassLabel" else None


def read_manifest(folder: Path) -> DatasetManifest:
    path = folder / MANIFEST
    if not path.is_file():
        raise InvalidInput(f"{str(folder)!r} is not a dataset version: it has no {MANIFEST}")
    try:
        return DatasetManifest.model_validate_json(path.read_text())
    except ValidationError as exc:
        raise InvalidInput(
            f"{path}: not a valid dataset manifest ({exc.error_count()} problems: {exc})"
        ) from None


def _split_info(folder: Path, split: str) -> SplitInfo:
    manifest = read_manifest(folder)
    if split not in manifest.splits:
        have = ", ".join(manifest.splits) or "none"
        raise NotFound(f"dataset has no split {split!r} (splits: {have})")
    return manifest.splits[split]


def iter_batches(folder: Path, split: str, batch_size: int = 8192) -> Iterator[pa.RecordBatch]:
    """Stream a split in bounded memory, shard by shard."""
    for shard in _split_info(folder, split).shards:
        file = pq.ParquetFile(folder / shard)
        for batch in file.iter_batches(batch_size=batch_size):
            table = pa.Table.from_batches([batch]).replace_schema_metadata(file.schema_arrow.metadata)
            yield from decode_labels(table).to_batches()


def read_split(folder: Path, split: str) -> pa.Table:
    shards = _split_info(folder, split).shards
    if not shards:
        return pa.table({})
    return pa.concat_tables(decode_labels(pq.read_table(folder / s)) for s in shards)
