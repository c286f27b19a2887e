"""``pack``: concatenate the token ids of a split's rows, in order, into blocks of exactly
``block_size`` tokens for pretraining. A final stream (one per split) so blocks span shard
boundaries; the leftover tokens at the end of each split are dropped and counted."""

from __future__ import annotations

from typing import ClassVar, Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pydantic import Field

from fmstack.data.ops.base import OpConfig, Stats


class PackConfig(OpConfig):
    op: Literal["pack"] = "pack"
    kind: ClassVar[Literal["row", "global", "final"]] = "final"
    block_size: int = Field(ge=2, le=1_000_000)

    def needs_tokens(self) -> bool:
        return True

    def build(self) -> Pack:
        return Pack(self)


def _blocks(flat: np.ndarray, size: int) -> pa.Table:
    n = len(flat) // size
    offsets = pa.array(np.arange(n + 1, dtype=np.int32) * size)
    ids = pa.ListArray.from_arrays(offsets, pa.array(flat[: n * size], pa.int32()))
    mask = pa.ListArray.from_arrays(offsets, pa.array(np.ones(n * size, dtype=np.int32)))
    return pa.table({"input_ids": ids, "attention_mask": mask})


class Pack:
    def __init__(self, config: PackConfig) -> None:
        self.size = config.block_size
        self._carry = np.zeros(0, dtype=np.int32)
        self._rows = 0
        self._blocks = 0

    def feed(self, table: pa.Table) -> pa.Table:
        self._rows += table.num_rows
        flat = pc.list_flatten(table.column("input_ids")).to_numpy().astype(np.int32)
        tokens = np.concatenate([self._carry, flat])
        whole = len(tokens) // self.size * self.size
        self._carry = tokens[whole:]
        out = _blocks(tokens[:whole], self.size)
        self._blocks += out.num_rows
        return out

    def finish(self) -> tuple[pa.Table, Stats]:
        stats = {"rows_in": self._rows, "rows_out": self._blocks, "tokens_dropped": len(self._carry)}
        return _blocks(np.zeros(0, dtype=np.int32), self.size), stats
