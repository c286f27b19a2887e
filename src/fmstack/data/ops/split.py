"""``split``: reassign every row to train / validation / test, seeded and stratified by label.

Global: shards report their rows' label ids; the driver shuffles each label's rows with the seed
and cuts them by the fractions, so every split gets the same label mix; shards then set ``__split``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar, Literal

import numpy as np
import pyarrow as pa
from pydantic import Field, model_validator

from fmstack.data.ops.base import SPLIT_COLUMN, Context, OpConfig, Stats

NAMES = ("train", "validation", "test")


class SplitConfig(OpConfig):
    op: Literal["split"] = "split"
    kind: ClassVar[Literal["row", "global", "final"]] = "global"
    train: float = Field(default=0.8, ge=0, le=1)
    validation: float = Field(default=0.1, ge=0, le=1)
    test: float = Field(default=0.1, ge=0, le=1)
    stratify: bool = True
    seed: int | None = None  # defaults to the spec's seed

    @model_validator(mode="after")
    def _sums_to_one(self) -> SplitConfig:
        total = self.train + self.validation + self.test
        if abs(total - 1) > 1e-6:
            raise ValueError(f"train + validation + test must be 1, got {total:g}")
        return self

    def build(self) -> Split:
        return Split(self)


def assign(labels: np.ndarray, fractions: Sequence[float], seed: int) -> np.ndarray:
    """Split code (index into NAMES) per row; each stratum is cut by the fractions."""
    rng = np.random.default_rng(seed)
    out = np.zeros(len(labels), dtype=np.int8)
    for value in np.unique(labels):
        rows = rng.permutation(np.flatnonzero(labels == value))
        cuts = np.round(np.cumsum(fractions)[:-1] * len(rows)).astype(int)
        for code, part in enumerate(np.split(rows, cuts)):
            out[part] = code
    return out


class Split:
    def __init__(self, config: SplitConfig) -> None:
        self.config = config

    def keys(self, table: pa.Table, ctx: Context) -> dict[str, np.ndarray]:
        if not self.config.stratify or "label" not in table.column_names:
            return {"label": np.zeros(table.num_rows, dtype=np.int32)}
        index = {label: i for i, label in enumerate(ctx.labels)}
        values = table.column("label").to_pylist()
        return {"label": np.fromiter((index.get(v, -1) for v in values), dtype=np.int32, count=len(values))}

    def decide(self, keys: Sequence[dict[str, np.ndarray]], ctx: Context) -> tuple[list[np.ndarray], Stats]:
        c = self.config
        labels = np.concatenate([k["label"] for k in keys]) if keys else np.zeros(0, np.int32)
        codes = assign(labels, (c.train, c.validation, c.test), c.seed if c.seed is not None else ctx.seed)
        stats = {f"rows_{name}": int((codes == i).sum()) for i, name in enumerate(NAMES)}
        return np.split(codes, np.cumsum([len(k["label"]) for k in keys])[:-1]), stats

    def apply(self, table: pa.Table, decision: np.ndarray, ctx: Context) -> tuple[pa.Table, Stats]:
        names = pa.array(np.array(NAMES, dtype=object)[decision.astype(np.int64)], pa.string())
        table = table.set_column(table.column_names.index(SPLIT_COLUMN), SPLIT_COLUMN, names)
        return table, {"rows_in": table.num_rows, "rows_out": table.num_rows}
