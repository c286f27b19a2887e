"""``fmstack compress REF``: thin over ``fmstack.compress.compress``; shows the before/after report.

Options and a ``--spec`` YAML file parse into the same ``CompressSpec``, whose fields are the options."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from fmstack.cli.output import JsonFlag, console, emit, err_console, human_size
from fmstack.cli.spec_options import Flag, spec_options
from fmstack.compress.spec import CompressSpec, parse_spec
from fmstack.specfile import read_spec_file

RefArg = Annotated[
    str, typer.Argument(help="Model version to compress: NAMESPACE/NAME, NAMESPACE/NAME:VERSION or @ALIAS.")
]


def _show(result: object) -> None:
    from fmstack.compress.pipeline import CompressResult

    assert isinstance(result, CompressResult)
    report = result.report
    b, a = report.before, report.after
    table = Table("", "parent", "compressed", "change", box=None)
    table.add_row("runtime", b.runtime, a.runtime, "")
    table.add_row("size", human_size(b.size_bytes), human_size(a.size_bytes), f"{report.size_ratio:.2f}x")
    table.add_row(
        "latency b1",
        f"{b.latency_b1_ms:.2f} ms",
        f"{a.latency_b1_ms:.2f} ms",
        f"{report.speedup_b1:.2f}x faster",
    )
    table.add_row(
        "latency b32",
        f"{b.latency_b32_ms:.1f} ms",
        f"{a.latency_b32_ms:.1f} ms",
        f"{report.speedup_b32:.2f}x faster",
    )
    if report.drop_points is not None:
        table.add_row(
            report.metric.replace("_", " "),
            f"{b.quality:.2f}",
            f"{a.quality:.2f}",
            f"{round(-report.drop_points, 2) + 0.0:+.2f} points (limit {report.max_drop_points:g})",  # no -0.00
        )
    console.print(f"[bold]{report.parent}[/]: {' -> '.join(report.steps)}")
    console.print(table)
    version = result.version
    if version is not None and version.run_id not in (None, result.run_id):
        console.print(
            f"[bold]{version.ref}[/] already holds exactly this result (from run {version.run_id}); "
            f"nothing new was stored (run {result.run_id})"
        )
    elif version is not None:
        forced = " [bold yellow]despite a drop over the limit (--force)[/]" if report.forced else ""
        console.print(
            f"registered [bold]{version.ref}[/]{forced} (run {result.run_id}, compressed from {report.parent})"
        )
    else:
        console.print(
            f"[bold red]not registered[/]: the quality drop exceeds the limit (run {result.run_id})"
        )


# Every option comes from a CompressSpec field (its description is the help, its default the spec's):
# only how a field is spelled on the command line is here. The two switches keep the names users know.
FLAGS = {
    "output": Flag("--output", "-o"),
    "per_channel": Flag("--per-channel/--per-tensor"),
    "calibration": Flag(
        "--static-calibration",
        sets="static",
        help="Static int8: fix activation scales from calibration texts instead of computing them per "
        "batch at run time (default: dynamic).",
    ),
}
SpecFile = Annotated[
    Path | None,
    typer.Option(
        "--spec",
        metavar="FILE.yaml",
        help="A YAML compression spec (the same fields as the options, e.g. quantize: int8); options "
        "given on the command line override it.",
    ),
]


@spec_options(CompressSpec, flags=FLAGS, hide={"schema_version"})
def compress(
    ref: RefArg, fields: dict[str, Any], spec_file: SpecFile = None, json_output: JsonFlag = False
) -> None:
    """Compress a model version into a smaller, faster ONNX version, measured against its parent.

    Adapters are merged first; then optional pruning, ONNX export with dynamic batch and sequence axes,
    graph fusion and int8 quantisation. The report (size, latency at batch 1 and 32, accuracy or cosine
    similarity to the parent) goes into the new version's card. With --eval-data, a drop over
    --max-accuracy-drop registers nothing and exits 1, unless --force.

    Example: fmstack compress acme/intents --quantize int8 --eval-data acme/intents-data
    """
    from fmstack.cli.remote import open_hub

    given = read_spec_file(spec_file, "compression spec") if spec_file else {}
    # Checked before importing torch, transformers and onnxruntime: a bad flag is refused in a second.
    spec = parse_spec({**given, **fields})
    from fmstack.compress.pipeline import compress as run_compress

    with open_hub() as hub:
        if json_output or not err_console.is_terminal:
            result = run_compress(hub, ref, spec)
        else:
            with err_console.status("compressing") as status:
                result = run_compress(hub, ref, spec, progress=lambda msg: status.update(msg))
    emit(result.as_dict(), json_output, lambda: _show(result))
    if not result.registered:
        err_console.print(
            f"[bold red]error:[/] {ref}: quality dropped {result.report.drop_points:.2f} points, over the limit of "
            f"{result.report.max_drop_points:g}; nothing was registered. Compress less (lower --prune, "
            "per-channel int8), raise --max-accuracy-drop, or pass --force",
            highlight=False,
            soft_wrap=True,
        )
        raise typer.Exit(1)
