"""``sample``: keep a seeded random subset of each split, by row count or fraction."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar, Literal

import numpy as np
import pyarrow as pa
from pydantic import Field, model_validator

from fmstack.data.ops.base import Context, OpConfig, Stats, keep, split_codes


class SampleConfig(OpConfig):
    op: Literal["sample"] = "sample"
    kind: ClassVar[Literal["row", "global", "final"]] = "global"
    n: int | None = Field(default=None, ge=0)  # rows kept per split (all when a split has fewer)
    fraction: float | None = Field(default=None, gt=0, le=1)
    seed: int | None = None  # defaults to the spec's seed

    @model_validator(mode="after")
    def _one(self) -> SampleConfig:
        if (self.n is None) == (self.fraction is None):
            raise ValueError("give exactly one of n or fraction")
        return self

    def build(self) -> Sample:
        return Sample(self)


class Sample:
    def __init__(self, config: SampleConfig) -> None:
        self.config = config

    def keys(self, table: pa.Table, ctx: Context) -> dict[str, np.ndarray]:
        return {"split": split_codes(table, ctx)}

    def decide(self, keys: Sequence[dict[str, np.ndarray]], ctx: Context) -> tuple[list[np.ndarray], Stats]:
        c = self.config
        codes = np.concatenate([k["split"] for k in keys]) if keys else np.zeros(0, np.int32)
        rng = np.random.default_rng(c.seed if c.seed is not None else ctx.seed)
        mask = np.zeros(len(codes), dtype=bool)
        for code in np.unique(codes):
            rows = np.flatnonzero(codes == code)
            k = min(c.n, len(rows)) if c.n is not None else round(len(rows) * (c.fraction or 0))
            mask[rng.choice(rows, size=k, replace=False)] = True
        stats = {"rows_dropped": int(len(mask) - mask.sum())}
        return np.split(mask, np.cumsum([len(k["split"]) for k in keys])[:-1]), stats

    def apply(self, table: pa.Table, decision: np.ndarray, ctx: Context) -> tuple[pa.Table, Stats]:
        return keep(table, decision)
