"""``fmstack eval`` and ``fmstack generate``: thin over ``fmstack.train.evaluate`` / ``.generate``."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.table import Table
from rich.text import Text

from fmstack.cli.output import JsonFlag, console, emit
from fmstack.hub import Hub


def evaluate(
    ref: Annotated[str, typer.Argument(help="Model, adapter or ONNX version ref to evaluate.")],
    data: Annotated[str, typer.Option("--data", "-d", help="Dataset version ref.")],
    split: Annotated[str, typer.Option("--split", help="Dataset split to score.")] = "test",
    json_output: JsonFlag = False,
) -> None:
    """Metrics of any model or adapter version on a dataset split (the training metrics: accuracy,
    macro-F1 and per-class report; recall@k; perplexity), recorded as an eval run in the hub. ONNX
    versions written by `fmstack compress` run in ONNX Runtime, as the server runs them."""
    from fmstack.compress.loaded import load_version
    from fmstack.train.evaluate import eval_run

    with Hub.open() as hub:
        run_id, metrics = eval_run(hub, ref, data, split, load_version)
    emit({"run_id": run_id, "metrics": metrics}, json_output, lambda: _show(run_id, metrics))


def _show(run_id: int, metrics: dict[str, Any]) -> None:
    table = Table("metric", "value")
    for key, value in metrics.items():
        if isinstance(value, float):
            table.add_row(key, f"{value:.4f}")
    console.print(table)
    per_class = metrics.get("per_class")
    if per_class:
        report = Table("class", "precision", "recall", "f1", "support")
        for name, row in per_class.items():
            report.add_row(
                Text(name),  # a label from the data, never markup
                *(f"{row[k]:.3f}" for k in ("precision", "recall", "f1-score")),
                str(int(row["support"])),
            )
        console.print(report)
    console.print(f"recorded as eval run {run_id}")


def generate(
    ref: Annotated[str, typer.Argument(help="Causal LM version ref (task clm).")],
    prompt: Annotated[str, typer.Option("--prompt", "-p", help="Text to continue.")],
    max_new_tokens: Annotated[
        int, typer.Option("--max-new-tokens", help="Tokens to sample (at least 1).")
    ] = 32,
    temperature: Annotated[
        float, typer.Option("--temperature", help="Sampling temperature; 0 = greedy.")
    ] = 1.0,
    top_k: Annotated[
        int, typer.Option("--top-k", help="Sample among the k likeliest tokens; 0 = no limit.")
    ] = 50,
    seed: Annotated[int, typer.Option("--seed", help="Sampling seed.")] = 0,
    json_output: JsonFlag = False,
) -> None:
    """Sample a continuation of --prompt from a causal language model."""
    from fmstack.train.generate import check_options
    from fmstack.train.generate import generate as sample
    from fmstack.train.inference import load

    check_options(max_new_tokens, temperature, top_k)  # before the model loads
    with Hub.open() as hub:
        text = sample(load(hub, ref), prompt, max_new_tokens, temperature, top_k, seed)
    emit(
        {"prompt": prompt, "completion": text},
        json_output,
        lambda: console.print(prompt + text, highlight=False),
    )
