"""The items a search recipe indexes: a user's catalog file, or the distinct items of the training
pairs. An ``id`` and a ``text`` column, every other column kept as metadata that filters can name."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv
import pyarrow.json as pjson
import pyarrow.parquet as pq

from fmstack.errors import InvalidInput, clip


def read_items(path: Path, id_column: str | None, text_column: str) -> pa.Table:
    """The catalog file as (id, text, metadata...): ids as strings (row numbers when there is no id
    column), rows without text dropped."""
    table = _read(path)
    missing = [c for c in (text_column, id_column) if c is not None and c not in table.column_names]
    if missing:
        raise InvalidInput(
            f"{path}: no column {', '.join(map(repr, missing))}; its columns: {table.column_names} "
            "(name them with --item-text-column / --item-id-column)"
        )
    texts = pc.cast(table.column(text_column), pa.string())
    ids = (
        pc.cast(table.column(id_column), pa.string())
        if id_column
        else pa.array([str(i) for i in range(table.num_rows)])
    )
    rest = [c for c in table.column_names if c not in (text_column, id_column)]
    items = pa.table(
        {"id": ids, "text": texts, **{c: table.column(c) for c in rest if c not in ("id", "text")}}
    )
    keep = pc.and_(
        pc.is_valid(items.column("text")), pc.not_equal(pc.utf8_trim_whitespace(items.column("text")), "")
    )
    items = items.filter(pc.fill_null(keep, False))
    if items.num_rows == 0:
        raise InvalidInput(f"{path}: no item has text in column {text_column!r}")
    return items


def items_from_pairs(texts: list[str]) -> pa.Table:
    """The distinct items of the pairs, in first-seen order, numbered from 0."""
    unique = list(dict.fromkeys(texts))
    return pa.table({"id": [str(i) for i in range(len(unique))], "text": unique})


def _read(path: Path) -> pa.Table:
    if not path.is_file():
        raise InvalidInput(f"--items {clip(str(path))!r}: no such file")
    suffix = path.suffix.lower()
    try:
        if suffix == ".parquet":
            return pq.read_table(path)
        if suffix in (".jsonl", ".json"):
            return pjson.read_json(path)
        if suffix in (".csv", ".tsv"):
            delimiter = "\t" if suffix == ".tsv" else ","
            return pcsv.read_csv(
                path, parse_options=pcsv.ParseOptions(delimiter=delimiter, newlines_in_values=True)
            )
    except (pa.ArrowInvalid, OSError) as exc:
        raise InvalidInput(f"{path}: cannot read it as {suffix[1:]}: {clip(str(exc))}") from None
    raise InvalidInput(
        f"{path}: give the catalog as .csv, .tsv, .jsonl or .parquet (got {suffix or 'no suffix'!r})"
    )
