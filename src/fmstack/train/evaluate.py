"""Task metrics of a loaded model on a dataset split: the same functions the training loop uses.
``fmstack eval`` records them as an eval run; compress uses ``evaluate`` for its accuracy gate."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import torch

from fmstack.data import format as dataformat
from fmstack.hub import HubApi
from fmstack.train import registry
from fmstack.train.inference import Loaded, load
from fmstack.train.loop import scalar_metrics
from fmstack.train.versions import resolve_as


@torch.no_grad()
def evaluate(loaded: Loaded, data_dir: Any, split: str = "test", batch_size: int = 64) -> dict[str, Any]:
    """Metrics of ``loaded`` on ``split`` of the dataset version checked out at ``data_dir``.
    Classification labels are matched by name to the model's labels."""
    task = registry.task(loaded.task)
    ctx = loaded.context()
    if loaded.task == "embedding":  # labels only group texts that answer each other: the data's own
        ctx = dataclasses.replace(ctx, labels=list(dataformat.read_manifest(data_dir).labels))
    rows = task.encode(dataformat.read_split(data_dir, split), loaded.tokenizer, ctx)
    rows = [task.finalize(r, (-1, i), ctx) for i, r in enumerate(rows)]
    order = sorted(range(len(rows)), key=lambda i: len(rows[i].get("input_ids", ())))
    device = next(loaded.model.parameters(), torch.empty(0)).device  # an ONNX module has none: CPU
    batches = [
        {k: v.to(device) for k, v in task.collate([rows[i] for i in order[s : s + batch_size]], ctx).items()}
        for s in range(0, len(order), batch_size)
    ]
    loaded.model.eval()
    metrics: dict[str, Any] = task.evaluate(loaded.model, batches, ctx)
    return metrics


def eval_run(
    hub: HubApi, ref: str, data: str, split: str = "test", loader: Callable[[HubApi, str], Loaded] = load
) -> tuple[int, dict[str, Any]]:
    """Evaluate a model or adapter version and record it as an ``eval`` run; returns (run id, metrics).
    ``loader`` loads the version (compress passes one that also runs ONNX versions)."""
    model_ref = resolve_as(hub, ref, ("model", "adapter"), "fmstack eval").ref
    data_ref = resolve_as(hub, data, ("dataset",), "--data").ref
    # Recorded from the start: an error, Ctrl-C or SIGTERM leaves a failed run with the reason.
    spec = {"model": model_ref, "data": data_ref, "split": split}
    with hub.runs.recorded("eval", spec, inputs=[model_ref, data_ref]) as run_id:
        metrics = evaluate(loader(hub, model_ref), hub.checkout(data_ref), split)
        hub.runs.log_metrics(run_id, 0, scalar_metrics(metrics))
        hub.runs.finish(run_id, "succeeded", spec_update={"result": scalar_metrics(metrics)})
    return run_id, metrics
