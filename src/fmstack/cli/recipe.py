"""``fmstack recipe NAME``: one application, end to end on your own data (``fmstack.recipes``). One
command per entry of ``recipes.registry.RECIPES``; each one's options are its spec's fields."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table
from rich.text import Text

from fmstack.cli.output import JsonFlag, console, emit, err_console
from fmstack.cli.spec_options import Flag, spec_options
from fmstack.hub import Hub
from fmstack.recipes.registry import RECIPES, Recipe
from fmstack.recipes.result import RecipeResult
from fmstack.specfile import read_spec_file

app = typer.Typer(
    help="Application recipes: one command from your data file to a served model, every step a recorded run.",
    no_args_is_help=True,
)
# --data is required by the spec, not the command line: a --spec file may give it instead.
FLAGS = {"data": Flag("--data", default=None, metavar="FILE")}
SpecFile = Annotated[
    Path | None,
    typer.Option(
        "--spec",
        metavar="FILE.yaml",
        help="A YAML file of the same fields as the options, one per line (epochs: 5; data takes a "
        "list of files); options given on the command line override it.",
    ),
]


def _command(recipe: Recipe) -> Callable[..., None]:
    def command(fields: dict[str, Any], spec_file: SpecFile = None, json_output: JsonFlag = False) -> None:
        given = read_spec_file(spec_file, "recipe spec") if spec_file else {}
        spec = recipe.parse({**given, **fields})  # every bad option at once, before any work
        start = time.perf_counter()
        with Hub.open() as hub:
            result = recipe.run(hub, spec, _progress(json_output))
        emit(result, json_output, lambda: _show(result, time.perf_counter() - start))

    return spec_options(recipe.spec, flags=FLAGS, hide={"schema_version"})(command)


for _name, _recipe in RECIPES.items():
    app.command(_name, help=_recipe.summary)(_command(_recipe))


def _progress(quiet: bool) -> Callable[[str, float | None], None]:
    def say(step: str, seconds: float | None) -> None:
        if quiet:
            return
        if seconds is None:
            err_console.print(f"[bold cyan]>[/] {step}", highlight=False)
        else:
            err_console.print(f"  [dim]done in {seconds:.1f}s[/]")

    return say


def _show(result: RecipeResult, seconds: float) -> None:
    console.print(f"[bold]fmstack recipe {result.recipe}: done in {seconds:.0f}s[/]")
    versions = Table("step", "version", box=None)
    for step, version in result.versions.items():
        versions.add_row(step, version.ref)
    console.print(versions)
    metrics = Table("measure", "value", box=None)
    for name, value in result.metrics.items():
        metrics.add_row(name, f"{value:.4f}" if isinstance(value, float) else str(value))
    console.print(metrics)
    for name, rows in result.tables.items():
        if not rows:
            continue
        table = Table(*rows[0].keys(), title=name, box=None)
        for row in rows:
            table.add_row(*(f"{v:.3f}" if isinstance(v, float) else Text(str(v)) for v in row.values()))
        console.print(table)
    for note in result.notes:
        console.print(Text(f"note: {note}"))
    if result.serve:
        console.print(f"\n[bold]Next[/]\n  {result.serve} --port 8000", highlight=False)
