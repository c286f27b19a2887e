"""Reading raw files row by row, in bounded batches, with the line each row came from.

Every reader yields ``RawBatch``es: Python values of the mapped columns (not yet validated) plus
rows that could not even be parsed. Python's ``csv`` and ``json`` are used rather than Arrow's
readers because they report exact line numbers (Arrow's CSV reader does not for malformed rows),
which the ``rejected`` split promises.
"""

from __future__ import annotations

import csv
import io
import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from gzip import BadGzipFile
from typing import Any, Literal

import pyarrow as pa
import pyarrow.parquet as pq
import zstandard

from fmstack.data.columns import ColumnMap
from fmstack.data.format import class_label_names
from fmstack.data.sources import Source, find_bad_utf8, open_binary
from fmstack.errors import InvalidInput, clip

BATCH_ROWS = 8192
TextMode = Literal["lines", "document"]


@dataclass
class Rejected:
    line: int
    reason: str  # a short code: unparseable, invalid_json, missing_column, wrong_type, ...
    detail: str
    raw: str


@dataclass
class RawBatch:
    values: dict[str, list[Any]]  # canonical name (text, text_pair, label) -> values
    lines: list[int]
    rejected: list[Rejected] = field(default_factory=list)


@contextmanager
def _decoding(source: Source) -> Iterator[None]:
    """Turn decoding and decompression failures into one clear error naming the file and offset."""
    try:
        yield
    except UnicodeDecodeError:
        offset = find_bad_utf8(source.path, source.compression)
        raise InvalidInput(
            f"{source.name}: not valid UTF-8 at byte offset {offset}"
            f"{' of the decompressed stream' if source.compression else ''}; re-encode the file as UTF-8"
        ) from None
    except (BadGzipFile, zstandard.ZstdError, EOFError, OSError) as exc:
        raise InvalidInput(
            f"{source.name}: cannot read the {source.compression or 'file'} stream ({exc})"
        ) from None
    except pa.ArrowInvalid as exc:
        raise InvalidInput(f"{source.name}: not a readable Parquet file ({exc})") from None


@contextmanager
def _long_fields() -> Iterator[None]:
    """Lift csv's field size limit (128 KiB by default) while this module parses, and only then.

    One long document per cell is legitimate input, but the limit is process-wide: set once at import,
    it would also lift it for every other csv reader in the process (a caller's own, a test's)."""
    before = csv.field_size_limit(sys.maxsize)
    try:
        yield
    finally:
        csv.field_size_limit(before)


def _next_row(reader: Iterator[list[str]]) -> list[str] | None:
    """The next row of a ``csv.reader``, parsed without the field size limit; None at the end."""
    with _long_fields():  # around each row, not the whole read: the read is a generator that yields
        return next(reader, None)


def _delimiter(source: Source) -> str:
    return "," if source.format == "csv" else "\t"


def _text_stream(source: Source) -> io.TextIOWrapper:
    return io.TextIOWrapper(open_binary(source.path, source.compression), encoding="utf-8", newline="")


def peek_columns(source: Source) -> list[str]:
    """The column names of a file, from its header, schema or first JSON object."""
    with _decoding(source):
        if source.format == "text":
            return ["text"]
        if source.format == "parquet":
            return list(pq.read_schema(source.path).names)
        with _text_stream(source) as f:
            if source.format in ("csv", "tsv"):
                header = _next_row(csv.reader(f, delimiter=_delimiter(source)))
                if not header:
                    raise InvalidInput(f"{source.name}: empty file, expected a header line with column names")
                if len(set(header)) != len(header):
                    raise InvalidInput(f"{source.name}: repeated column names in the header {clip(header)}")
                return header
            for line in f:
                try:
                    obj = json.loads(line)
                except json.JSONDecodeError:
                    continue
                if isinstance(obj, dict):
                    return list(obj)
    raise InvalidInput(f"{source.name}: no JSON object found, so no columns to map")


def read(source: Source, columns: ColumnMap, text_mode: TextMode = "lines") -> Iterator[RawBatch]:
    readers = {"csv": _read_csv, "tsv": _read_csv, "jsonl": _read_jsonl, "parquet": _read_parquet}
    with _decoding(source):
        if source.format == "text":
            yield from _read_text(source, text_mode)
        else:
            yield from readers[source.format](source, columns)


def _names(columns: ColumnMap) -> dict[str, str]:
    names = {"text": columns.text}
    if columns.text_pair:
        names["text_pair"] = columns.text_pair
    if columns.label:
        names["label"] = columns.label
    return names


def _empty(names: dict[str, str]) -> RawBatch:
    return RawBatch({k: [] for k in names}, [])


def _read_csv(source: Source, columns: ColumnMap) -> Iterator[RawBatch]:
    names = _names(columns)
    with _text_stream(source) as f:
        reader = csv.reader(f, delimiter=_delimiter(source))
        header = _next_row(reader) or []
        index = {k: header.index(c) for k, c in names.items() if c in header}
        missing = [c for c in names.values() if c not in header]
        if missing:
            raise InvalidInput(
                f"{source.name}: no column {clip(missing[0])!r} (columns: {clip(', '.join(header))})"
            )
        batch, start = _empty(names), reader.line_num + 1
        while (row := _next_row(reader)) is not None:
            if len(row) != len(header):
                raw = _delimiter(source).join(row)
                detail = f"expected {len(header)} fields, found {len(row)}"
                batch.rejected.append(Rejected(start, "unparseable", detail, raw))
            else:
                for key, i in index.items():
                    batch.values[key].append(row[i])
                batch.lines.append(start)
            start = reader.line_num + 1
            if len(batch.lines) + len(batch.rejected) >= BATCH_ROWS:
                yield batch
                batch = _empty(names)
        yield batch


def _read_jsonl(source: Source, columns: ColumnMap) -> Iterator[RawBatch]:
    names = _names(columns)
    with _text_stream(source) as f:
        batch = _empty(names)
        for number, line in enumerate(f, start=1):
            if not line.strip():
                continue  # blank lines separate nothing in JSON Lines; they are not rows
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                batch.rejected.append(Rejected(number, "invalid_json", str(exc), line.rstrip("\n")))
                obj = None
            if obj is not None and not isinstance(obj, dict):
                batch.rejected.append(
                    Rejected(number, "invalid_json", "not a JSON object", line.rstrip("\n"))
                )
            elif isinstance(obj, dict):
                absent = [c for c in names.values() if c not in obj]
                if absent:
                    detail = f"no key {absent[0]!r}"
                    batch.rejected.append(Rejected(number, "missing_column", detail, line.rstrip("\n")))
                else:
                    for key, name in names.items():
                        batch.values[key].append(obj[name])
                    batch.lines.append(number)
            if len(batch.lines) + len(batch.rejected) >= BATCH_ROWS:
                yield batch
                batch = _empty(names)
        yield batch


def _read_parquet(source: Source, columns: ColumnMap) -> Iterator[RawBatch]:
    names = _names(columns)
    file = pq.ParquetFile(source.path)
    have = file.schema_arrow.names
    missing = [c for c in names.values() if c not in have]
    if missing:
        raise InvalidInput(
            f"{source.name}: no column {clip(missing[0])!r} (columns: {clip(', '.join(have))})"
        )
    line = 1
    # A label column that `datasets` wrote as a ClassLabel holds ids; its names are in the schema.
    label_names = class_label_names(file.schema_arrow.metadata, names["label"]) if "label" in names else None
    for record_batch in file.iter_batches(batch_size=BATCH_ROWS, columns=list(dict.fromkeys(names.values()))):
        values = {k: record_batch.column(c).to_pylist() for k, c in names.items()}
        if label_names is not None:
            values["label"] = [_named(v, label_names) for v in values["label"]]
        n = record_batch.num_rows
        yield RawBatch(values, list(range(line, line + n)))  # "line" is the 1-based row number
        line += n


def _named(label: Any, names: list[str]) -> Any:
    """A ClassLabel id (or list of ids) as its name; anything else as it is, for validation to judge."""
    if isinstance(label, list):
        return [_named(x, names) for x in label]
    is_id = isinstance(label, int) and not isinstance(label, bool) and 0 <= label < len(names)
    return names[label] if is_id else label


def _read_text(source: Source, text_mode: TextMode) -> Iterator[RawBatch]:
    with _text_stream(source) as f:
        if text_mode == "document":
            yield RawBatch({"text": [f.read()]}, [1])
            return
        batch = RawBatch({"text": []}, [])
        for number, line in enumerate(f, start=1):
            text = line.rstrip("\r\n")
            if not text.strip():
                continue  # blank lines separate examples; they are not examples themselves
            batch.values["text"].append(text)
            batch.lines.append(number)
            if len(batch.lines) >= BATCH_ROWS:
                yield batch
                batch = RawBatch({"text": []}, [])
        yield batch
