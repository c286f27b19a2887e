"""``normalize``: Unicode normalisation, control characters, whitespace, optional lowercase.

Vectorised with Arrow compute kernels (RE2 regexes), so no Python loop runs per row."""

from __future__ import annotations

from typing import Literal

import pyarrow as pa
import pyarrow.compute as pc

from fmstack.data.ops.base import Context, OpConfig, Stats, text_columns

# C0 and C1 control characters except tab, newline and carriage return (whitespace handles those).
_CONTROL = r"[\x{0}-\x{8}\x{b}\x{c}\x{e}-\x{1f}\x{7f}-\x{9f}]"
_SPACE = r"[\s\p{Z}]+"


class NormalizeConfig(OpConfig):
    op: Literal["normalize"] = "normalize"
    form: Literal["NFKC", "NFC", "NFKD", "NFD"] | None = "NFKC"
    strip_control: bool = True
    collapse_whitespace: bool = True
    lowercase: bool = False

    def build(self) -> Normalize:
        return Normalize(self)


class Normalize:
    def __init__(self, config: NormalizeConfig) -> None:
        self.config = config

    def clean(self, values: pa.ChunkedArray) -> pa.ChunkedArray:
        c = self.config
        if c.form:
            values = pc.utf8_normalize(values, c.form)
        if c.strip_control:
            values = pc.replace_substring_regex(values, _CONTROL, "")
        if c.collapse_whitespace:
            values = pc.utf8_trim_whitespace(pc.replace_substring_regex(values, _SPACE, " "))
        if c.lowercase:
            values = pc.utf8_lower(values)
        return values

    def apply(self, table: pa.Table, ctx: Context) -> tuple[pa.Table, Stats]:
        changed = 0
        for name in text_columns(table):
            before = table.column(name)
            after = self.clean(before)
            changed += pc.sum(pc.not_equal(before, after)).as_py() or 0
            table = table.set_column(table.column_names.index(name), name, after)
        return table, {"rows_in": table.num_rows, "rows_out": table.num_rows, "texts_changed": changed}
