"""Server-side evaluation of a round's global adapter on the federation's evaluation dataset, with the
task's own metrics (the functions the training loop evaluates with)."""

from __future__ import annotations

from pathlib import Path

from fmstack.federated.local import WEIGHTS, LocalModel
from fmstack.federated.spec import FederationSpec
from fmstack.hub import HubApi


def evaluate_folder(hub: HubApi, spec: FederationSpec, folder: Path) -> dict[str, float]:
    """``eval_<metric>`` of the adapter in ``folder`` on ``spec.eval_split`` of ``spec.eval_data``."""
    model = LocalModel(hub, spec)
    metrics = model.evaluate(folder / WEIGHTS, hub.checkout(str(spec.eval_data)), spec.eval_split)
    return {f"eval_{k}": v for k, v in metrics.items()}
