"""``fmstack data ingest``: raw files -> a validated dataset version with a ``rejected`` split.

Rows stream from the readers through validation into fixed-size shards; nothing is held whole in
memory. Unusable rows are kept in ``rejected`` with a reason, the source file and the line. The
version is built in a temporary folder and pushed only when complete and within the allowed
rejected fraction, so a failed ingest registers nothing.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import pyarrow as pa
from pydantic import BaseModel, ConfigDict, Field

from fmstack.data import card as card_mod
from fmstack.data import readers, sources
from fmstack.data.columns import ColumnMap, infer
from fmstack.data.format import DatasetManifest, SplitInfo, write_manifest
from fmstack.data.publish import Published, publish
from fmstack.data.shards import DEFAULT_SHARD_ROWS, ShardWriter
from fmstack.data.stats import measure
from fmstack.errors import InvalidInput
from fmstack.hub import HubApi
from fmstack.hub.scratch import scratch_dir

REJECTED_SCHEMA = pa.schema(
    [
        ("text", pa.string()),
        ("reason", pa.string()),
        ("detail", pa.string()),
        ("source", pa.string()),
        ("line", pa.int64()),
    ]
)


class IngestSpec(BaseModel):
    """Everything that decides an ingest's output; recorded as the run's spec."""

    model_config = ConfigDict(extra="forbid")
    schema_version: Literal[1] = 1
    name: str
    paths: list[str] = []
    splits: dict[str, list[str]] = {}  # explicit --split NAME=PATH
    text_column: str | None = None
    label_column: str | None = None
    pair_columns: tuple[str, str] | None = None
    labels: list[str] | None = None
    max_rejected_fraction: float | None = Field(default=None, ge=0, le=1)
    format: sources.Format | None = None
    text_mode: readers.TextMode = "lines"
    shard_rows: int = Field(default=DEFAULT_SHARD_ROWS, ge=1)


@dataclass(frozen=True)
class Built:
    rows: dict[str, int]
    rejected: dict[str, int]  # reason -> rows
    sources: list[dict[str, Any]]
    columns: ColumnMap


@dataclass(frozen=True)
class IngestResult:
    published: Published
    built: Built


def plan_sources(spec: IngestSpec) -> list[sources.Source]:
    """Every input file with its split, format and hash. Splits come from --split, else file names."""
    assigned: dict[Path, str] = {}
    for split, patterns in spec.splits.items():
        for path in sources.expand(patterns):
            assigned[path] = sources.check_split_name(split)
    loose = [p for p in sources.expand(spec.paths) if p not in assigned] if spec.paths else []
    named = {p: sources.split_from_name(p) for p in loose}
    unnamed = [p for p, s in named.items() if s is None]
    if unnamed and len(unnamed) < len(loose):
        raise InvalidInput(
            f"some files name a split (train/validation/test) and some do not: {', '.join(map(str, unnamed))}; "
            "rename them or map each with --split NAME=PATH"
        )
    for path, found in named.items():
        assigned[path] = found or "train"
    if not assigned:
        raise InvalidInput("no input files: give PATH|GLOB arguments or --split NAME=PATH")
    root = sources.common_root(list(assigned))
    out = []
    for path in sorted(assigned, key=lambda p: (sources_order(assigned[p]), str(p))):
        fmt, compression = sources.detect(path, spec.format)
        name = path.resolve().relative_to(root).as_posix()
        out.append(
            sources.Source(
                path, name, fmt, compression, assigned[path], sources.sha256_file(path), path.stat().st_size
            )
        )
    return out


def sources_order(split: str) -> int:
    order = ("train", "validation", "test")
    return order.index(split) if split in order else len(order)


def infer_columns(spec: IngestSpec, plan: Sequence[sources.Source]) -> ColumnMap:
    first = readers.peek_columns(plan[0])
    columns = infer(first, spec.text_column, spec.label_column, spec.pair_columns)
    for source in plan[1:]:
        have = readers.peek_columns(source)
        missing = [c for c in columns.required() if c not in have]
        if missing:
            raise InvalidInput(
                f"{source.name} lacks column {missing[0]!r} that {plan[0].name} maps "
                f"(its columns: {', '.join(have)}); ingest files with different columns separately"
            )
    if spec.labels is not None and columns.label is None:
        raise InvalidInput("--labels was given but the input has no label column; pass --label-column NAME")
    return columns


def _label_str(value: Any) -> str | None:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | str):
        return str(value)
    return None


def validate(
    batch: readers.RawBatch, source: str, allowed: frozenset[str] | None
) -> tuple[pa.Table, list[readers.Rejected]]:
    """Split a raw batch into canonical rows and rejected ones, each rejection with its reason."""
    keys = list(batch.values)
    kept: dict[str, list[Any]] = {k: [] for k in keys}
    rejected = list(batch.rejected)
    for i, line in enumerate(batch.lines):
        row = {k: batch.values[k][i] for k in keys}
        problem = _problem(row, allowed)
        if problem is None:
            for k in keys:
                kept[k].append(row[k] if k != "label" else _label_str(row[k]))
        else:
            raw = row["text"] if isinstance(row["text"], str) else repr(row["text"])
            rejected.append(readers.Rejected(line, problem[0], problem[1], raw))
    return pa.table({k: pa.array(v, pa.string()) for k, v in kept.items()}), rejected


def _problem(row: dict[str, Any], allowed: frozenset[str] | None) -> tuple[str, str] | None:
    for key in ("text", "text_pair"):
        if key not in row:
            continue
        value = row[key]
        if value is None:
            return "missing_value", f"{key} is empty (null)"
        if not isinstance(value, str):
            return "wrong_type", f"{key} is {type(value).__name__}, expected a string"
        if not value.strip():
            return "empty_text", f"{key} is empty or whitespace"
    if "label" in row:
        label = row["label"]
        if label is None or label == "":
            return "missing_label", "label is empty"
        text = _label_str(label)
        if text is None:
            return "wrong_type", f"label is {type(label).__name__}, expected a string or integer"
        if allowed is not None and text not in allowed:
            return "unknown_label", f"label {text!r} is not in --labels"
    return None


def _rejected_table(rows: list[readers.Rejected], source: str) -> pa.Table:
    return pa.table(
        {
            "text": [r.raw for r in rows],
            "reason": [r.reason for r in rows],
            "detail": [r.detail for r in rows],
            "source": [source] * len(rows),
            "line": [r.line for r in rows],
        },
        schema=REJECTED_SCHEMA,
    )


def build(spec: IngestSpec, folder: Path, progress: Callable[[int], None] | None = None) -> Built:
    """Read, validate and shard every source into ``folder``; returns counts (nothing is pushed)."""
    plan = plan_sources(spec)
    columns = infer_columns(spec, plan)
    allowed = frozenset(spec.labels) if spec.labels is not None else None
    writers: dict[str, ShardWriter] = {}
    rejected_writer = ShardWriter(folder, "rejected", spec.shard_rows)
    reasons: Counter[str] = Counter()
    seen_labels: set[str] = set()
    for source in plan:
        writer = writers.setdefault(source.split, ShardWriter(folder, source.split, spec.shard_rows))
        for batch in readers.read(source, columns, spec.text_mode):
            table, rejected = validate(batch, source.name, allowed)
            writer.add(table)
            if "label" in table.column_names:
                seen_labels.update(table.column("label").unique().to_pylist())
            rejected.sort(key=lambda r: r.line)
            rejected_writer.add(_rejected_table(rejected, source.name))
            reasons.update(r.reason for r in rejected)
            if progress is not None:
                progress(table.num_rows + len(rejected))
    splits: dict[str, SplitInfo] = {s: w.close() for s, w in writers.items()}
    splits = {s: info for s, info in splits.items() if info.rows}
    rejected_info = rejected_writer.close()
    rows = {s: info.rows for s, info in splits.items()}
    _check_rejected(spec, sum(rows.values()), reasons)
    if rejected_info.rows:
        splits["rejected"] = rejected_info
    canonical = ["text"] + (["text_pair"] if columns.text_pair else []) + (["label"] if columns.label else [])
    labels = list(spec.labels) if spec.labels is not None else sorted(seen_labels)
    write_manifest(folder, DatasetManifest(splits=splits, columns=canonical, labels=labels))
    described = [
        {
            "name": s.name,
            "sha256": s.sha256,
            "size": s.size,
            "split": s.split,
            "format": s.format,
            "compression": s.compression,
        }
        for s in plan
    ]
    return Built(rows, dict(reasons), described, columns)


def _check_rejected(spec: IngestSpec, accepted: int, reasons: Counter[str]) -> None:
    total_rejected = sum(reasons.values())
    counts = ", ".join(f"{reason}: {n}" for reason, n in sorted(reasons.items())) or "none"
    if accepted == 0:
        raise InvalidInput(
            f"no usable rows in the input (rejected: {counts}); check the column mapping and the files"
        )
    fraction = total_rejected / (accepted + total_rejected)
    if spec.max_rejected_fraction is not None and fraction > spec.max_rejected_fraction:
        raise InvalidInput(
            f"{total_rejected} of {accepted + total_rejected} rows rejected ({fraction:.1%}), more than "
            f"--max-rejected-fraction {spec.max_rejected_fraction} ({counts}); nothing was registered"
        )


def _card(spec: IngestSpec, folder: Path, result: Built) -> str:
    stats = measure(folder)
    src = card_mod.table(
        ["file", "split", "format", "bytes", "sha256"],
        [
            [
                s["name"],
                s["split"],
                s["format"] + (f"+{s['compression']}" if s["compression"] else ""),
                s["size"],
                s["sha256"],
            ]
            for s in result.sources
        ],
    )
    rej = (
        card_mod.table(["reason", "rows"], sorted(result.rejected.items()))
        if result.rejected
        else "No rows were rejected."
    )
    mapping = ", ".join(f"{k} <- {v!r}" for k, v in vars(result.columns).items() if v)
    sections = [f"## Sources\n\nColumns: {mapping}.\n\n{src}", f"## Rejected rows\n\n{rej}"]
    meta = {
        "sources": [{"name": s["name"], "sha256": s["sha256"]} for s in result.sources],
        "rejected": result.rejected,
    }
    return card_mod.render(spec.name, stats, sections, meta)


def ingest(hub: HubApi, spec: IngestSpec, progress: Callable[[int], None] | None = None) -> IngestResult:
    """Build the version in a scratch folder under ``FMSTACK_HOME`` (a killed ingest leaves it for
    ``gc``), inside a run recorded from the start: a failed ingest is a failed run with its reason."""
    hub.check_repo_kind(spec.name, "dataset")  # before reading any file
    with (
        hub.runs.recorded("data.ingest", spec.model_dump(mode="json")) as run_id,
        scratch_dir(hub.settings.home, "ingest") as folder,
    ):
        result = build(spec, folder, progress)
        published = publish(
            hub,
            spec.name,
            folder,
            card=_card(spec, folder, result),
            run_id=run_id,
            message=f"ingest {len(result.sources)} file(s)",
            details={"sources": result.sources, "columns": vars(result.columns)},
        )
    return IngestResult(published, result)
