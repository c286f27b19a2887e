"""``redact_pii``: replace emails, phone numbers, card numbers, IBANs and IPs with typed
placeholders (``[EMAIL]``...), counting what was found by type. Patterns live in ``data/pii.py``."""

from __future__ import annotations

from typing import Literal

import pyarrow as pa
from pydantic import field_validator

from fmstack.data.ops.base import Context, OpConfig, Stats, text_columns
from fmstack.data.pii import PII_TYPES, PiiType, redact


class RedactPiiConfig(OpConfig):
    op: Literal["redact_pii"] = "redact_pii"
    types: list[PiiType] = list(PII_TYPES)

    @field_validator("types")
    @classmethod
    def _some(cls, value: list[PiiType]) -> list[PiiType]:
        if not value:
            raise ValueError("name at least one type to redact")
        return value

    def build(self) -> RedactPii:
        return RedactPii(self)


class RedactPii:
    def __init__(self, config: RedactPiiConfig) -> None:
        self.config = config

    def apply(self, table: pa.Table, ctx: Context) -> tuple[pa.Table, Stats]:
        counts: dict[str, int] = {}
        rows_changed = 0
        for name in text_columns(table):
            before = table.column(name).to_pylist()
            after = [redact(t, self.config.types, counts) for t in before]
            rows_changed += sum(a != b for a, b in zip(after, before, strict=True))
            table = table.set_column(table.column_names.index(name), name, pa.array(after, pa.string()))
        stats = {"rows_in": table.num_rows, "rows_out": table.num_rows, "texts_changed": rows_changed}
        stats.update({f"pii_{k}": v for k, v in sorted(counts.items())})
        return table, stats
