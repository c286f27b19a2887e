"""Server-side evaluation of a round's global adapter on the federation's evaluation dataset, with the
task's own metrics (the functions the training loop evaluates with)."""

from __future__ import annotations

from pathlib import Path

import torch

from fmstack.data import format as dataformat
from fmstack.federated.local import WEIGHTS, load_weights, prepare_local
from fmstack.federated.spec import FederationSpec
from fmstack.hub import HubApi
from fmstack.train.loop import scalar_metrics


@torch.no_grad()
def evaluate_folder(
    hub: HubApi, spec: FederationSpec, folder: Path, batch_size: int = 64
) -> dict[str, float]:
    """``eval_<metric>`` of the adapter in ``folder`` on ``spec.eval_split`` of ``spec.eval_data``."""
    prep = prepare_local(hub, spec, None, str(spec.eval_data))
    load_weights(prep, folder / WEIGHTS)
    data_dir = hub.checkout(str(spec.eval_data))
    rows = prep.task.encode(dataformat.read_split(data_dir, spec.eval_split), prep.tokenizer, prep.ctx)
    order = sorted(range(len(rows)), key=lambda i: len(rows[i].get("input_ids", ())))
    batches = [
        prep.task.collate([rows[i] for i in order[s : s + batch_size]], prep.ctx)
        for s in range(0, len(order), batch_size)
    ]
    prep.model.eval()
    metrics = scalar_metrics(prep.task.evaluate(prep.model, batches, prep.ctx))
    return {f"eval_{k}": v for k, v in metrics.items()}
