"""The shapes of a processing op, and the context each one runs in.

- ``RowOp``: a pure function of one shard (normalize, filter, redact_pii, map_labels, augment,
  tokenize). Shards run in parallel, in any order, on any executor.
- ``GlobalOp``: needs every shard (dedup_exact, dedup_near, split, sample). It runs in three steps so
  it stays correct under sharding: ``keys`` (per shard, parallel: small per-row arrays such as hashes
  or MinHash bands), ``decide`` (once, on the driver, over the keys of all shards in order), and
  ``apply`` (per shard, parallel: a keep-mask or split assignment).
- ``FinalOp``: a sequential stream over the finished rows of each split (pack), run while the
  output is assembled.

Every op reports counters (rows in and out, plus its own, e.g. duplicates removed); the pipeline
sums them over shards for the card. Processing tables carry a ``__split`` column naming each row's
split so that ``split`` can reassign rows without moving them between shards.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import ClassVar, Literal, Protocol

import numpy as np
import pyarrow as pa
from pydantic import BaseModel, ConfigDict

SPLIT_COLUMN = "__split"
TEXT_COLUMNS = ("text", "text_pair")
Stats = dict[str, int]


@dataclass(frozen=True)
class Context:
    """What an op may know about where it runs; equal on every executor."""

    unit: int  # index of the input shard being processed (stable across executors)
    seed: int
    labels: tuple[str, ...] = ()  # label list in force before this op
    splits: tuple[str, ...] = ("train", "validation", "test")  # every split name a row may carry
    folders: dict[str, str] = field(default_factory=dict)  # hub ref -> local checkout (tokenizers)


class RowOp(Protocol):
    def apply(self, table: pa.Table, ctx: Context) -> tuple[pa.Table, Stats]: ...


class GlobalOp(Protocol):
    def keys(self, table: pa.Table, ctx: Context) -> dict[str, np.ndarray]: ...

    def decide(
        self, keys: Sequence[dict[str, np.ndarray]], ctx: Context
    ) -> tuple[list[np.ndarray], Stats]: ...

    def apply(self, table: pa.Table, decision: np.ndarray, ctx: Context) -> tuple[pa.Table, Stats]: ...


class FinalOp(Protocol):
    def feed(self, table: pa.Table) -> pa.Table: ...

    def finish(self) -> tuple[pa.Table, Stats]: ...


class OpConfig(BaseModel):
    """Base of every op config: closed to unknown keys so typos in a spec are reported."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    op: str  # the registry name; each op narrows it to a Literal (the spec's tag)
    kind: ClassVar[Literal["row", "global", "final"]] = "row"

    def labels_after(self, labels: tuple[str, ...]) -> tuple[str, ...]:
        return labels

    def build(self) -> RowOp | GlobalOp | FinalOp:
        raise NotImplementedError(f"{type(self).__name__} must define build()")

    def needs_tokens(self) -> bool:
        """True when the op reads input_ids, so a tokenize op must come before it."""
        return False

    def models(self) -> list[str]:
        """Hub refs of models this op needs checked out (tokenizers)."""
        return []


def text_columns(table: pa.Table) -> list[str]:
    return [c for c in TEXT_COLUMNS if c in table.column_names]


def keep(table: pa.Table, mask: pa.Array | np.ndarray) -> tuple[pa.Table, Stats]:
    out = table.filter(mask)
    return out, {"rows_in": table.num_rows, "rows_out": out.num_rows}


def split_codes(table: pa.Table, ctx: Context) -> np.ndarray:
    """Each row's split as an index into ``ctx.splits``."""
    names = table.column(SPLIT_COLUMN).to_pylist()
    index = {s: i for i, s in enumerate(ctx.splits)}
    return np.fromiter((index[s] for s in names), dtype=np.int32, count=len(names))
