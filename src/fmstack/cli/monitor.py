"""``fmstack monitor report|export``: thin over ``fmstack.monitor.report`` and ``fmstack.monitor.export``."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table
from rich.text import Text

from fmstack.cli.output import JsonFlag, console, emit, err_console
from fmstack.cli.remote import open_hub

if TYPE_CHECKING:
    from fmstack.monitor.report import Report

app = typer.Typer(
    no_args_is_help=True,
    help="What served versions did: reports with drift scores and plots, and feedback exported as datasets.",
)

LogDir = Annotated[
    Path | None,
    typer.Option(
        "--log-dir", help="The prediction log folder (default: FMSTACK_HOME/predictions, as fmstack serve)."
    ),
]
Since = Annotated[
    str | None,
    typer.Option(
        "--since", help="Only rows from then on: a duration back (30m, 24h, 7d) or an ISO time (UTC)."
    ),
]


@app.command("report")
def report(
    ref: Annotated[str, typer.Argument(help="Model ref: NS/NAME (latest), NS/NAME:N or NS/NAME@ALIAS.")],
    since: Since = None,
    log_dir: LogDir = None,
    plot: Annotated[Path | None, typer.Option("--plot", help="Write the figures to this PNG file.")] = None,
    embedder: Annotated[
        str | None,
        typer.Option(
            "--embedder",
            help="Embedding model ref for the embedding-space drift test (e.g. fmstack/minilm-l6); "
            "without it only the PSI scores are given.",
        ),
    ] = None,
    json_output: JsonFlag = False,
) -> None:
    """What the version REF points at did: volume, latency, confidence, labels, drift, feedback accuracy.

    From the log `fmstack serve --log-predictions` writes: predicted labels against the training
    data's, drift scores (PSI on labels and confidence; an MMD two-sample test in embedding space
    with --embedder) and accuracy on feedback. The first report of a version scores up to 500
    held-out rows of its training data (the confidence reference), kept for later reports.

    Example: fmstack monitor report acme/intent@production --since 24h --plot report.png
    """
    from fmstack.monitor.logs import log_root, parse_since
    from fmstack.monitor.plots import save_png
    from fmstack.monitor.report import build

    with open_hub() as hub:
        root = log_root(hub.settings, log_dir)
        with err_console.status(f"reading the log at {root}"):
            result = build(hub, ref, root, parse_since(since), embedder)
    if plot is not None:
        save_png(result, plot)
    emit(result.model_dump(mode="json"), json_output, lambda: _show(result, plot))


def _show(r: Report, plot: Path | None) -> None:
    console.print(Text(f"{r.ref} -> {r.version}: {r.predictions} predictions in {r.requests} requests"))
    if r.latency_ms:
        console.print(
            f"latency ms p50 {r.latency_ms.p50:.1f}  p95 {r.latency_ms.p95:.1f}  p99 {r.latency_ms.p99:.1f}"
        )
    if r.confidence:
        console.print(
            f"confidence mean {r.confidence.mean:.3f}  p10 {r.confidence.p10:.3f}  p50 {r.confidence.p50:.3f}"
        )
    table = Table("drift", "score", "reading")
    d = r.drift
    table.add_row("label PSI", _num(d.label_psi), d.label or "")
    table.add_row("confidence PSI", _num(d.confidence_psi), d.confidence or "")
    if d.embedding:
        e = d.embedding
        table.add_row(
            f"embedding MMD² ({e.embedder})",
            f"{e.mmd2:.4f} (p={e.p_value:.3f})",
            "drift" if e.drifted else "no drift",
        )
    console.print(table)
    for note in d.notes:
        console.print(Text(f"note: {note}"))
    labels = Table("label", "predicted", "training data")
    for share in r.labels[:15]:
        labels.add_row(Text(share.label), f"{share.predicted:.3f}", _num(share.training))
    console.print(labels)
    fb = r.feedback
    console.print(f"feedback: {fb.count} rows, accuracy {_num(fb.accuracy)}")
    if plot is not None:
        console.print(Text(f"plots: {plot}"))


def _num(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


@app.command("export")
def export(
    ref: Annotated[str, typer.Argument(help="Model ref whose repo's feedback to export.")],
    to: Annotated[str, typer.Option("--to", help="Dataset repo NS/NAME to write the version to.")],
    since: Since = None,
    log_dir: LogDir = None,
    pseudo_labels: Annotated[
        bool, typer.Option("--pseudo-labels", help="Also export confident predictions without feedback.")
    ] = False,
    min_confidence: Annotated[
        float, typer.Option("--min-confidence", min=0.0, max=1.0, help="Top score a pseudo-label needs.")
    ] = 0.9,
    holdout: Annotated[
        float,
        typer.Option(
            "--holdout", min=0.0, max=0.99, help="Share of feedback put in a test split (by request id)."
        ),
    ] = 0.2,
    json_output: JsonFlag = False,
) -> None:
    """Feedback on any version of REF's repo as a dataset version, made by a recorded export run.

    Rows with a right label (given, or a prediction marked correct), in splits train and test
    (--holdout, by request id), columns text and label plus request_id, version and source; the
    export run's inputs are the versions that answered.

    Example: fmstack monitor export acme/intent@production --to acme/intent-feedback
    """
    from fmstack.monitor import export as exporting
    from fmstack.monitor.logs import log_root, parse_since

    with open_hub() as hub:
        root = log_root(hub.settings, log_dir)
        done = exporting.export(
            hub,
            ref,
            to,
            root,
            since=parse_since(since),
            pseudo_labels=pseudo_labels,
            min_confidence=min_confidence,
            holdout=holdout,
        )
    data = {
        "version": done.version.ref,
        "reused": done.reused,
        "run_id": done.run_id,
        "splits": done.splits,
        "feedback": done.feedback,
        "pseudo_labels": done.pseudo,
    }
    shown = ", ".join(f"{k} {v}" for k, v in done.splits.items())
    same = " (the same rows as the latest version: nothing new)" if done.reused else ""
    emit(data, json_output, lambda: console.print(Text(f"exported {done.version.ref}: {shown}{same}")))
