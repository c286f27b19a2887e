"""``fmstack demo``: the main job. Runs ``fmstack.demo.lifecycle`` and shows what it made."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, cast

import typer
from rich.table import Table
from rich.text import Text
from rich.tree import Tree

from fmstack.cli.output import JsonFlag, console, emit, err_console, human_size
from fmstack.demo.lifecycle import STEPS, DemoOptions, DemoSummary, run_demo
from fmstack.hub import Hub, LineageNode
from fmstack.train import registry
from fmstack.train.spec import MethodName


def demo(
    data: Annotated[
        Path | None,
        typer.Option(help="Your own data file (CSV, TSV, JSONL, Parquet) instead of the built-in sample."),
    ] = None,
    text_column: Annotated[str | None, typer.Option(help="Column holding the text (with --data).")] = None,
    label_column: Annotated[str | None, typer.Option(help="Column holding the label (with --data).")] = None,
    method: Annotated[
        str, typer.Option(help=f"Fine-tuning method: {', '.join(registry.methods_for('classification'))}.")
    ] = "lora",
    epochs: Annotated[int, typer.Option(min=1, help="Training epochs.")] = 8,
    namespace: Annotated[str, typer.Option(help="Hub namespace for what the demo makes.")] = "demo",
    json_output: JsonFlag = False,
) -> None:
    """Run the whole lifecycle on this machine and show it: import the built-in base model, ingest and
    process a dataset, fine-tune, evaluate, compress (ONNX int8, accuracy-gated), alias it `production`,
    serve it and send real HTTP requests. About 85 s on an idle 2-core machine with the built-in sample."""
    options = DemoOptions(
        data=data,
        text_column=text_column,
        label_column=label_column,
        method=_method(method),
        epochs=epochs,
        namespace=namespace,
    )
    start = time.perf_counter()
    with Hub.open() as hub:
        summary = run_demo(hub, options, _progress(json_output))
    emit(summary, json_output, lambda: _show(summary, time.perf_counter() - start))


def _progress(quiet: bool) -> Callable[[str, float | None], None]:
    """Prints each step as it starts, then how long that step alone took."""
    step = [0]

    def say(text: str, seconds: float | None) -> None:
        if quiet:
            return
        if seconds is None:
            step[0] += 1
            err_console.print(f"[bold cyan][{step[0]}/{STEPS}][/] {text}")
        else:
            err_console.print(f"      [dim]done in {seconds:.1f}s[/]")

    return say


def _method(name: str) -> MethodName:
    # The classification methods of the registry: the demo trains an intent classifier.
    choices = registry.methods_for("classification")
    if name not in choices:
        raise typer.BadParameter(f"{name!r} is not one of {', '.join(choices)}", param_hint="--method")
    return cast(MethodName, name)


def _show(s: DemoSummary, seconds: float) -> None:
    console.print(f"[bold]fmstack demo: done in {seconds:.0f}s[/]")  # no rule: 10,000 columns in a pipe
    steps = Table("step", "seconds", box=None)
    for step, took in s.seconds.items():
        steps.add_row(step, f"{took:.1f}")
    console.print(steps)
    versions = Table("step", "version", "size", box=None)
    for step, v in s.versions.items():
        versions.add_row(
            step,
            v.ref if step != "production" else f"{v.repo}@production → {v.number}",
            human_size(v.total_size),
        )
    console.print(versions)
    if s.lineage is not None:
        tree = Tree(f"[bold]{s.lineage.ref}[/] made from")
        _add(tree, s.lineage.upstream.parents)
        console.print(tree)
    c = s.compression
    quality = Table("", "size", "latency b1", "latency b32", "accuracy", box=None)
    for name in ("before", "after"):
        m = c.get(name, {})
        acc = f"{m['quality']:.1f}%" if m.get("quality") is not None else "-"
        quality.add_row(
            f"{m.get('runtime', name)}",
            human_size(m.get("size_bytes", 0)),
            f"{m.get('latency_b1_ms', 0):.1f} ms",
            f"{m.get('latency_b32_ms', 0):.1f} ms",
            acc,
        )
    console.print(quality)
    console.print(
        f"int8 is {c.get('size_ratio', 0):.2f}x the size, {c.get('speedup_b1', 0):.1f}x faster at batch 1, "
        f"{c.get('speedup_b32', 0):.1f}x at batch 32; accuracy drop {c.get('drop_points') or 0:.2f} points"
    )
    accuracy = s.eval_metrics.get("accuracy")
    if accuracy is not None:
        console.print(
            f"fine-tuned ({s.train.get('method')}) test accuracy {100 * accuracy:.1f}%, "
            f"macro-F1 {100 * s.eval_metrics.get('macro_f1', 0):.1f}%"
        )
    predictions = Table("request", "intent", "score", box=None)
    for p in s.predictions:
        predictions.add_row(Text(p["text"]), Text(p["label"]), f"{p['score']:.2f}")  # data, never markup
    console.print(predictions)
    console.print(
        f"served over HTTP: {s.latency_ms.get('requests', 0):.0f} requests, p50 {s.latency_ms.get('p50', 0):.1f} ms, "
        f"p95 {s.latency_ms.get('p95', 0):.1f} ms; embeddings from the base model: {s.embedding_dims} dims"
    )
    served = s.versions.get("production")
    production = f"{served.repo if served else 'demo/intent-onnx'}@production"
    data = s.versions.get("data")
    console.print("\n[bold]Next[/]")
    console.print(f"  fmstack hub lineage {production}")
    console.print(f"  fmstack serve {production} --port 8000")
    if data is not None:
        console.print(f"  fmstack eval {production} --data {data.ref} --split test")
    console.print(
        "  fmstack runs ls;  fmstack hub ls;  fmstack demo --data FILE --text-column T --label-column L"
    )
    console.print(f"  hub folder: {s.home} (set FMSTACK_HOME to use another)")


def _add(tree: Tree, nodes: list[LineageNode]) -> None:
    for node in nodes:
        run = f", {node.run_kind} run {node.run_id}" if node.run_id else ""
        _add(tree.add(f"{node.ref} [dim]({node.kind}{run})[/]"), node.parents)
