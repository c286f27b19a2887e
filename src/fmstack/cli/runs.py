"""``fmstack runs ...``: the records of ingest, process, train, eval and compress runs."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from fmstack.cli.output import JsonFlag, console, emit
from fmstack.cli.remote import open_hub

app = typer.Typer(no_args_is_help=True)
RunArg = Annotated[int, typer.Argument(help="Run id, as shown by `fmstack runs ls`.")]


@app.command("ls")
def list_runs(
    kind: Annotated[
        str | None, typer.Option("--kind", "-k", help="Only runs of this kind (train, eval, ...).")
    ] = None,
    limit: Annotated[int, typer.Option("--limit", "-n", min=1, help="How many of the latest runs.")] = 20,
    json_output: JsonFlag = False,
) -> None:
    """List recent runs, newest first."""
    with open_hub() as hub:
        runs = hub.runs.recent(kind=kind, limit=limit)

    def human() -> None:
        table = Table("id", "kind", "status", "started", "inputs", "outputs", box=None)
        for r in runs:
            table.add_row(
                str(r.id),
                r.kind,
                r.status,
                f"{r.started_at:%Y-%m-%d %H:%M}",
                ", ".join(r.inputs),
                ", ".join(r.outputs),
            )
        console.print(table if runs else f"no {kind} runs" if kind else "no runs yet")

    emit(runs, json_output, human)


@app.command()
def show(run_id: RunArg, json_output: JsonFlag = False) -> None:
    """Show a run: spec, status, environment, inputs, outputs and the last value of each metric."""
    with open_hub() as hub:
        run = hub.runs.get(run_id)
        metrics = hub.runs.metrics(run_id)

    def human() -> None:
        took = f" in {(run.ended_at - run.started_at).total_seconds():.1f}s" if run.ended_at else ""
        console.print(f"[bold]run {run.id}[/] {run.kind} {run.status}{took}, by {escape(run.creator)}")
        console.print(f"inputs: {', '.join(run.inputs) or '-'}   outputs: {', '.join(run.outputs) or '-'}")
        environment = ", ".join(f"{k} {v}" for k, v in run.environment.items() if v)
        console.print("environment: " + escape(environment))
        console.print_json(json.dumps(run.spec, default=str))
        last: dict[str, tuple[int, float]] = {m.name: (m.step, m.value) for m in metrics}
        if last:
            table = Table("metric", "step", "last value", box=None)
            for name, (step, value) in sorted(last.items()):
                table.add_row(name, str(step), f"{value:.6g}")
            console.print(table)

    emit({"run": run, "metrics": metrics}, json_output, human)


@app.command()
def logs(run_id: RunArg, json_output: JsonFlag = False) -> None:
    """Print a run's log."""
    with open_hub() as hub:
        text = hub.runs.logs(run_id)
    emit({"run_id": run_id, "log": text}, json_output, lambda: typer.echo(text, nl=False))
