"""Cutting a stream of Arrow tables into fixed-size Parquet shards of one split.

Shard boundaries depend only on the row count, never on how the stream happened to be chunked,
so the same rows always give the same files (and the same version digest)."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa

from fmstack.data.format import SplitInfo, write_shard

DEFAULT_SHARD_ROWS = 100_000


def write_table(folder: Path, split: str, index: int, table: pa.Table) -> str:
    # One chunk per column: equal rows then give equal pages whatever chunking produced them.
    return write_shard(folder, split, index, table.combine_chunks())


class ShardWriter:
    def __init__(self, folder: Path, split: str, shard_rows: int = DEFAULT_SHARD_ROWS) -> None:
        self.folder, self.split, self.shard_rows = folder, split, shard_rows
        self._pending: list[pa.Table] = []
        self._pending_rows = 0
        self.info = SplitInfo(rows=0, shards=[])

    def add(self, table: pa.Table) -> None:
        if table.num_rows == 0:
            return
        self._pending.append(table)
        self._pending_rows += table.num_rows
        while self._pending_rows >= self.shard_rows:
            whole = pa.concat_tables(self._pending)
            self._write(whole.slice(0, self.shard_rows))
            rest = whole.slice(self.shard_rows)
            self._pending, self._pending_rows = ([rest] if rest.num_rows else []), rest.num_rows

    def _write(self, table: pa.Table) -> None:
        self.info.shards.append(write_table(self.folder, self.split, len(self.info.shards), table))
        self.info.rows += table.num_rows

    def close(self) -> SplitInfo:
        if self._pending_rows:
            self._write(pa.concat_tables(self._pending))
            self._pending, self._pending_rows = [], 0
        return self.info
