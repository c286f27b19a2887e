"""``fmstack eval REF --data DATASET``: thin over ``fmstack.train.evaluate``."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.table import Table
from rich.text import Text

from fmstack.cli.output import JsonFlag, console, emit
from fmstack.cli.remote import open_hub


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

    with open_hub() as hub:
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
