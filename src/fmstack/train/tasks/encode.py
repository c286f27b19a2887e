"""Turning dataset rows into token ids with the model's own tokenizer (or taking pre-tokenised ids)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fmstack.errors import InvalidInput

if TYPE_CHECKING:
    import pyarrow as pa


def column(table: pa.Table, name: str, purpose: str) -> list[Any]:
    if name not in table.column_names:
        have = ", ".join(table.column_names) or "none"
        raise InvalidInput(f"the dataset has no {name!r} column, needed for {purpose} (columns: {have})")
    return list(table.column(name).to_pylist())


def tokenize(
    tokenizer: Any, texts: list[str], pairs: list[str] | None, max_length: int
) -> list[dict[str, list[int]]]:
    """One dict per text: input_ids (+ token_type_ids when the tokenizer makes them), unpadded."""
    enc = tokenizer(texts, pairs, truncation=True, max_length=max_length, padding=False)
    keys = [k for k in ("input_ids", "token_type_ids") if k in enc]
    return [{k: list(enc[k][i]) for k in keys} for i in range(len(texts))]


def token_rows(table: pa.Table, tokenizer: Any, max_length: int, purpose: str) -> list[dict[str, Any]]:
    """Pre-tokenised (``input_ids``, e.g. packed blocks) or tokenised here from ``text``."""
    if "input_ids" in table.column_names:
        return [
            {"input_ids": list(ids)[:max_length] if max_length else list(ids)}
            for ids in column(table, "input_ids", purpose)
        ]
    return tokenize(tokenizer, column(table, "text", purpose), None, max_length)


def label_ids(values: list[Any], labels: list[str], multi_label: bool) -> list[Any]:
    """Label names -> ids (single-label) or id lists (multi-label: a list column, or names joined by '|')."""
    index = {name: i for i, name in enumerate(labels)}
    out: list[Any] = []
    for row, value in enumerate(values):
        names = (value if isinstance(value, list) else str(value).split("|")) if multi_label else [value]
        missing = [n for n in names if n not in index]
        if missing:
            raise InvalidInput(
                f"row {row}: label {missing[0]!r} is not in the dataset's labels ({len(labels)} labels); "
                "the manifest's labels list must name every label"
            )
        ids = [index[n] for n in names]
        out.append(ids if multi_label else ids[0])
    return out
