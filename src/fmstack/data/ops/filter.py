"""``filter``: keep rows by length (characters, words or tokens), regexes and a label whitelist.

Each rule counts the rows it removed (a row removed by several rules counts for the first)."""

from __future__ import annotations

from typing import Literal

import pyarrow as pa
import pyarrow.compute as pc
from pydantic import field_validator, model_validator

from fmstack.data.ops.base import Context, OpConfig, Stats


class FilterConfig(OpConfig):
    op: Literal["filter"] = "filter"
    min_chars: int | None = None
    max_chars: int | None = None
    min_words: int | None = None
    max_words: int | None = None
    min_tokens: int | None = None  # length of input_ids: needs a tokenize op before
    max_tokens: int | None = None
    include: str | None = None  # keep only rows whose text matches this regex (RE2 syntax)
    exclude: str | None = None  # drop rows whose text matches this regex
    labels: list[str] | None = None  # keep only these labels

    @field_validator("include", "exclude")
    @classmethod
    def _regex(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                pc.match_substring_regex(pa.array([""]), value)
            except pa.ArrowInvalid as exc:
                raise ValueError(f"not a valid regex (RE2 syntax): {exc}") from None
        return value

    @model_validator(mode="after")
    def _bounds(self) -> FilterConfig:
        for low, high in (
            ("min_chars", "max_chars"),
            ("min_words", "max_words"),
            ("min_tokens", "max_tokens"),
        ):
            lo, hi = getattr(self, low), getattr(self, high)
            if lo is not None and hi is not None and lo > hi:
                raise ValueError(f"{low}={lo} is greater than {high}={hi}")
        return self

    def needs_tokens(self) -> bool:
        return self.min_tokens is not None or self.max_tokens is not None

    def build(self) -> Filter:
        return Filter(self)


def _range(values: pa.Array, low: int | None, high: int | None) -> pa.Array | None:
    masks = []
    if low is not None:
        masks.append(pc.greater_equal(values, low))
    if high is not None:
        masks.append(pc.less_equal(values, high))
    if not masks:
        return None
    return masks[0] if len(masks) == 1 else pc.and_(masks[0], masks[1])


class Filter:
    def __init__(self, config: FilterConfig) -> None:
        self.config = config

    def _rules(self, table: pa.Table) -> list[tuple[str, pa.Array | None]]:
        c, text = self.config, table.column("text")
        rules: list[tuple[str, pa.Array | None]] = [
            ("removed_chars", _range(pc.utf8_length(text), c.min_chars, c.max_chars)),
        ]
        if c.min_words is not None or c.max_words is not None:
            words = pc.list_value_length(pc.utf8_split_whitespace(text))
            rules.append(("removed_words", _range(words, c.min_words, c.max_words)))
        if c.min_tokens is not None or c.max_tokens is not None:
            tokens = pc.list_value_length(table.column("input_ids"))
            rules.append(("removed_tokens", _range(tokens, c.min_tokens, c.max_tokens)))
        if c.include is not None:
            rules.append(("removed_include", pc.match_substring_regex(text, c.include)))
        if c.exclude is not None:
            rules.append(("removed_exclude", pc.invert(pc.match_substring_regex(text, c.exclude))))
        if c.labels is not None and "label" in table.column_names:
            rules.append(("removed_labels", pc.is_in(table.column("label"), pa.array(c.labels, pa.string()))))
        return rules

    def apply(self, table: pa.Table, ctx: Context) -> tuple[pa.Table, Stats]:
        alive = pa.chunked_array([pa.array([True] * table.num_rows)])
        stats: Stats = {"rows_in": table.num_rows}
        for name, mask in self._rules(table):
            if mask is None:
                continue
            mask = pc.fill_null(mask, False)
            stats[name] = pc.sum(pc.and_(alive, pc.invert(mask))).as_py() or 0
            alive = pc.and_(alive, mask)
        out = table.filter(alive)
        stats["rows_out"] = out.num_rows
        return out, stats
