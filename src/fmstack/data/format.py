"""The on-disk form of a dataset version, shared by every producer and consumer of datasets.

A dataset version is a folder:

    dataset.json                         DatasetManifest below (splits, shards, columns, labels)
    data/<split>-<i:05d>.parquet         zstd-compressed Parquet shards, in order

Canonical columns: ``text`` (str), optional ``text_pair`` (str), optional ``label`` (str; its id is
the index in ``DatasetManifest.labels``), and, once tokenised, ``input_ids`` / ``attention_mask``
(list<int32>). The ``rejected`` split, when present, holds rows that could not be used, with
``reason``, ``source`` and ``line`` columns.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Literal

import pyarrow as pa
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


def shard_name(split: str, index: int) -> str:
    return f"data/{split}-{index:05d}.parquet"


def write_shard(folder: Path, split: str, index: int, table: pa.Table) -> str:
    name = shard_name(split, index)
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    # Fixed writer settings and no timestamps in metadata keep equal tables byte-identical,
    # so the same input and spec always give the same version digest.
    pq.write_table(table, path, compression="zstd", write_statistics=True, store_schema=True)
    return name


def write_split(folder: Path, split: str, tables: Iterable[pa.Table]) -> SplitInfo:
    shards, rows = [], 0
    for index, table in enumerate(tables):
        shards.append(write_shard(folder, split, index, table))
        rows += table.num_rows
    return SplitInfo(rows=rows, shards=shards)


def write_manifest(folder: Path, manifest: DatasetManifest) -> None:
    ordered = sorted(manifest.splits, key=lambda s: (SPLIT_ORDER.index(s) if s in SPLIT_ORDER else 99, s))
    manifest = manifest.model_copy(update={"splits": {s: manifest.splits[s] for s in ordered}})
    (folder / MANIFEST).write_text(json.dumps(manifest.model_dump(), indent=2, sort_keys=False) + "\n")


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
        yield from pq.ParquetFile(folder / shard).iter_batches(batch_size=batch_size)


def read_split(folder: Path, split: str) -> pa.Table:
    shards = _split_info(folder, split).shards
    if not shards:
        return pa.table({})
    return pa.concat_tables(pq.read_table(folder / s) for s in shards)
