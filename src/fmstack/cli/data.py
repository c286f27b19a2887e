"""``fmstack data ...``: ingest raw files, process datasets with a spec, and read versions back."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import ValidationError
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from fmstack.cli.output import JsonFlag, console, emit, err_console, markdown
from fmstack.cli.remote import open_hub
from fmstack.data import ingest as ingest_mod
from fmstack.data import sources
from fmstack.data.format import read_manifest
from fmstack.errors import InvalidInput
from fmstack.hub.cards import parse_card

app = typer.Typer(no_args_is_help=True)

RefArg = Annotated[
    str, typer.Argument(help="Dataset ref: NAMESPACE/NAME, NAMESPACE/NAME:VERSION or NAMESPACE/NAME@ALIAS.")
]


@contextmanager
def row_progress(description: str, enabled: bool, unit: str = "rows") -> Iterator[Callable[[int], None]]:
    """A done-counter on stderr; a no-op for --json or when stderr is not a terminal."""
    if not enabled or not err_console.is_terminal:
        yield lambda _n: None
        return
    columns = (
        SpinnerColumn(),
        TextColumn("{task.description}"),
        TextColumn("{task.completed:,} " + unit),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=err_console, transient=True) as bar:
        task = bar.add_task(description, total=None)
        yield lambda n: bar.advance(task, n)


def _parse_splits(values: list[str]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for value in values:
        name, sep, path = value.partition("=")
        if not sep or not name or not path:
            raise InvalidInput(f"bad --split {value!r}: use --split NAME=PATH, e.g. --split train=data/a.csv")
        out.setdefault(sources.check_split_name(name), []).append(path)
    return out


def _ingest_spec(options: dict[str, Any]) -> ingest_mod.IngestSpec:
    try:
        return ingest_mod.IngestSpec.model_validate(options)
    except ValidationError as exc:
        problems = "; ".join(f"--{str(e['loc'][0]).replace('_', '-')}: {e['msg']}" for e in exc.errors())
        raise InvalidInput(f"bad options: {problems}") from None


@app.command()
def ingest(
    paths: Annotated[
        list[str] | None,
        typer.Argument(
            help="Files, folders or globs (quote globs). Split by file name: train/validation|dev/test."
        ),
    ] = None,
    name: Annotated[
        str, typer.Option("--name", help="Dataset repo to store the version in, NAMESPACE/NAME.")
    ] = "",
    text_column: Annotated[
        str | None, typer.Option("--text-column", help="Column holding the text (inferred when unambiguous).")
    ] = None,
    label_column: Annotated[
        str | None,
        typer.Option("--label-column", help="Column holding the label (inferred when unambiguous)."),
    ] = None,
    pair_columns: Annotated[
        str | None, typer.Option("--pair-columns", help="Two columns A,B for sentence-pair data.")
    ] = None,
    split: Annotated[
        list[str] | None, typer.Option("--split", help="Map a file to a split: NAME=PATH (repeatable).")
    ] = None,
    labels: Annotated[
        str | None,
        typer.Option("--labels", help="Allowed labels, comma-separated; other labels are rejected."),
    ] = None,
    max_rejected_fraction: Annotated[
        float | None,
        typer.Option(
            "--max-rejected-fraction",
            help="Fail (and register nothing) when more than this fraction of rows is rejected.",
        ),
    ] = None,
    fmt: Annotated[
        sources.Format | None,
        typer.Option("--format", help="Force the input format instead of inferring it from file names."),
    ] = None,
    text_mode: Annotated[
        str,
        typer.Option(
            "--text-mode", help="Plain text: 'lines' (one example per line) or 'document' (one per file)."
        ),
    ] = "lines",
    shard_rows: Annotated[int, typer.Option("--shard-rows", help="Rows per Parquet shard.")] = 100_000,
    json_output: JsonFlag = False,
) -> None:
    """Turn raw CSV/TSV/JSONL/Parquet/text files (optionally .gz/.zst) into a dataset version.

    Unusable rows go to a 'rejected' split with the reason, file and line. Re-ingesting the same files
    returns the existing version."""
    if not name:
        raise InvalidInput("--name NAMESPACE/NAME is required: the dataset repo to store the version in")
    pair = None
    if pair_columns:
        parts = [p.strip() for p in pair_columns.split(",")]
        if len(parts) != 2 or not all(parts):
            raise InvalidInput(f"bad --pair-columns {pair_columns!r}: give two column names, A,B")
        pair = (parts[0], parts[1])
    spec = _ingest_spec(
        {
            "name": name,
            "paths": paths or [],
            "splits": _parse_splits(split or []),
            "text_column": text_column,
            "label_column": label_column,
            "pair_columns": pair,
            "labels": [s.strip() for s in labels.split(",") if s.strip()] if labels else None,
            "max_rejected_fraction": max_rejected_fraction,
            "format": fmt,
            "text_mode": text_mode,
            "shard_rows": shard_rows,
        }
    )
    with open_hub() as hub, row_progress(f"ingest {name}", not json_output) as advance:
        result = ingest_mod.ingest(hub, spec, advance)
    built, pub = result.built, result.published
    data = {
        "version": pub.version,
        "reused": pub.reused,
        "run_id": pub.run_id,
        "rows": built.rows,
        "rejected": built.rejected,
        "sources": built.sources,
    }

    def human() -> None:
        verb = "unchanged, already" if pub.reused else "stored"
        console.print(f"{verb} [bold]{pub.version.ref}[/] (digest {pub.version.digest[:12]})")
        console.print("rows: " + ", ".join(f"{s} {n:,}" for s, n in built.rows.items()))
        if built.rejected:
            console.print(
                f"rejected {sum(built.rejected.values()):,}: "
                + ", ".join(f"{r} {n:,}" for r, n in sorted(built.rejected.items()))
            )
            console.print(f"see them with: fmstack data head {pub.version.ref} --split rejected")

    emit(data, json_output, human)


@app.command()
def show(ref: RefArg, json_output: JsonFlag = False) -> None:
    """Show a dataset version's card: schema, rows per split, labels, lengths, sources or op stats."""
    with open_hub() as hub:
        version = hub.resolve(ref)
        text = hub.card(ref)
        manifest = read_manifest(hub.checkout(ref))
    meta, body = parse_card(text)
    data = {
        "version": version,
        "manifest": manifest.model_dump(),
        "card": meta.model_dump(),
        "card_text": text,
    }

    def human() -> None:
        console.print(f"[bold]{version.ref}[/]  digest {version.digest}", highlight=False)
        console.print(markdown(body))

    emit(data, json_output, human)


@app.command()
def head(
    ref: RefArg,
    split: Annotated[
        str, typer.Option("--split", "-s", help="Split to show (train, validation, test, rejected).")
    ] = "train",
    n: Annotated[int, typer.Option("-n", min=1, help="Number of rows.")] = 10,
    json_output: JsonFlag = False,
) -> None:
    """Show the first rows of a split."""
    from fmstack.data.format import iter_batches

    with open_hub() as hub:
        folder = hub.checkout(ref)
    rows: list[dict[str, Any]] = []
    for batch in iter_batches(folder, split, batch_size=max(n, 1)):
        rows.extend(batch.to_pylist()[: n - len(rows)])
        if len(rows) >= n:
            break

    def human() -> None:
        if not rows:
            console.print(f"split {split!r} is empty")
            return
        table = Table(*rows[0].keys(), box=None)
        for row in rows:
            table.add_row(*(_cell(v) for v in row.values()))
        console.print(table)

    emit(rows, json_output, human)


def _cell(value: Any, width: int = 80) -> Text:
    text = str(value)
    return Text(text if len(text) <= width else text[: width - 1] + "…")  # data, never Rich markup


@app.command()
def process(
    spec_path: Annotated[
        Path, typer.Argument(metavar="SPEC.yaml", help="Pipeline spec: input, output, seed and ops.")
    ],
    executor: Annotated[
        str, typer.Option("--executor", "-e", help="Where shards run: local (process pool) or ray.")
    ] = "local",
    ray_address: Annotated[
        str | None,
        typer.Option("--ray-address", help="Ray cluster address (default: start a local Ray runtime)."),
    ] = None,
    workers: Annotated[
        int | None,
        typer.Option("--workers", "-w", min=1, help="Parallel workers (default: CPU count, at most 8)."),
    ] = None,
    resume: Annotated[
        bool,
        typer.Option("--resume", help="Reuse the finished shards of an interrupted run of the same spec."),
    ] = False,
    json_output: JsonFlag = False,
) -> None:
    """Run a processing spec over a dataset version and store the result as a new version.

    Ops: normalize, filter, dedup_exact, dedup_near, redact_pii, map_labels, split, augment, sample,
    tokenize, pack. The same input, spec and seed always give the same digest, on either executor."""
    from fmstack.data.pipeline import process as run_process
    from fmstack.data.spec import parse_spec
    from fmstack.specfile import load_spec_file

    spec = load_spec_file(spec_path, lambda fields: parse_spec(fields, str(spec_path)), "processing spec")
    with open_hub() as hub, row_progress(f"process {spec.input}", not json_output, "shard tasks") as advance:
        result = run_process(
            hub,
            spec,
            executor=executor,
            workers=workers,
            ray_address=ray_address,
            resume=resume,
            progress=advance,
        )
    pub = result.published
    data = {
        "version": pub.version,
        "reused": pub.reused,
        "run_id": pub.run_id,
        "rows": result.rows,
        "ops": result.op_stats,
        "shards": result.units,
        "resumed_shards": result.resumed_units,
    }

    def human() -> None:
        verb = "unchanged, already" if pub.reused else "stored"
        console.print(f"{verb} [bold]{pub.version.ref}[/] (digest {pub.version.digest[:12]})")
        if result.resumed_units:
            console.print(f"resumed: reused {result.resumed_units} finished shard task(s)")
        table = Table("#", "op", "rows in", "rows out", "details", box=None)
        for i, op in enumerate(result.op_stats):
            details = ", ".join(f"{k}={v:,}" for k, v in op.items() if k not in ("op", "rows_in", "rows_out"))
            table.add_row(str(i), op["op"], f"{op.get('rows_in', '')}", f"{op.get('rows_out', '')}", details)
        console.print(table)
        console.print("rows: " + ", ".join(f"{s} {n:,}" for s, n in result.rows.items()))

    emit(data, json_output, human)
