"""``fmstack compress REF``: thin over ``fmstack.compress.compress``; shows the before/after report."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from fmstack.cli.output import JsonFlag, console, emit, err_console, human_size

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


def compress(
    ref: RefArg,
    export: Annotated[str, typer.Option("--export", help="Output format; onnx is the only one.")] = "onnx",
    quantize: Annotated[
        str, typer.Option("--quantize", help="none, or int8 (weights int8, per-channel by default).")
    ] = "none",
    static_calibration: Annotated[
        bool,
        typer.Option(
            "--static-calibration",
            help="Static int8: fix activation scales from calibration texts instead of per batch at run time.",
        ),
    ] = False,
    calibration_data: Annotated[
        str | None,
        typer.Option(
            "--calibration-data", help="Dataset ref with the calibration texts (default: --eval-data)."
        ),
    ] = None,
    per_tensor: Annotated[
        bool, typer.Option("--per-tensor", help="One int8 scale per weight tensor (less accurate on MiniLM).")
    ] = False,
    no_optimize: Annotated[
        bool, typer.Option("--no-optimize", help="Skip ONNX Runtime's fusion (attention, LayerNorm, GELU).")
    ] = False,
    prune: Annotated[
        float, typer.Option("--prune", help="Fraction (0-1) of weights, heads or FFN neurons to remove.")
    ] = 0.0,
    structured: Annotated[
        str | None,
        typer.Option("--structured", help="heads or ffn: remove whole heads / neurons (default: magnitude)."),
    ] = None,
    eval_data: Annotated[
        str | None,
        typer.Option("--eval-data", help="Dataset ref to measure accuracy / cosine similarity on."),
    ] = None,
    eval_split: Annotated[
        str | None,
        typer.Option(
            "--eval-split", help="Split of --eval-data (default: test, else validation, else train)."
        ),
    ] = None,
    eval_limit: Annotated[int, typer.Option("--eval-limit", help="At most this many eval rows.")] = 1000,
    max_accuracy_drop: Annotated[
        float | None,
        typer.Option(
            "--max-accuracy-drop",
            help="Refuse (exit 1, nothing registered) when quality drops more points than this (default 1.0).",
        ),
    ] = None,
    force: Annotated[
        bool, typer.Option("--force", help="Register even when the drop exceeds the limit.")
    ] = False,
    output: Annotated[
        str | None, typer.Option("--output", "-o", help="Repo NS/NAME of the result (default: <repo>-onnx).")
    ] = None,
    latency_runs: Annotated[int, typer.Option("--latency-runs", help="Timed runs at batch 1 (median).")] = 20,
    threads: Annotated[
        int,
        typer.Option("--threads", help="Threads for torch and ONNX Runtime while measuring (0: all cores)."),
    ] = 1,
    json_output: JsonFlag = False,
) -> None:
    """Compress a model version into a smaller, faster ONNX version, measured against its parent.

    Adapters are merged first; then optional pruning, ONNX export with dynamic batch and sequence axes,
    graph fusion and int8 quantisation. The report (size, latency at batch 1 and 32, accuracy or cosine
    similarity to the parent) goes into the new version's card. With --eval-data, a drop over
    --max-accuracy-drop registers nothing and exits 1, unless --force.

    Example: fmstack compress acme/intents --quantize int8 --eval-data acme/intents-data
    """
    from fmstack.compress.spec import parse_spec
    from fmstack.hub import Hub

    spec = parse_spec(
        {
            "export": export,
            "optimize": not no_optimize,
            "quantize": quantize,
            "calibration": "static" if static_calibration else "dynamic",
            "calibration_data": calibration_data,
            "per_channel": not per_tensor,
            "prune": prune,
            "structured": structured,
            "eval_data": eval_data,
            "eval_split": eval_split,
            "eval_limit": eval_limit,
            "max_accuracy_drop": max_accuracy_drop,
            "force": force,
            "output": output,
            "latency_runs": latency_runs,
            "threads": threads,
        }
    )
    spec.check()  # before importing torch, transformers and onnxruntime: a bad flag is refused in a second
    from fmstack.compress.pipeline import compress as run_compress

    with Hub.open() as hub:
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
