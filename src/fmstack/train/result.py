"""What a training run measured, and what ``train`` returns: one set of fields.

``TrainStats`` is the summary every path produces (in this process, from a torchrun or Ray Train
rank as JSON), the run record stores as its ``result``, and ``fmstack train --json`` prints. The
loop's ``FitResult`` adds the trained model and the full evaluation; ``TrainResult`` adds the run
and the pushed version. No torch here: the CLI imports it before deciding to train.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

from fmstack.hub import VersionInfo


@dataclass
class TrainStats:
    metrics: dict[str, float]  # scalar metrics of the kept weights on the eval split ({} without one)
    steps: int
    samples_per_s: float
    tokens_per_s: float
    mfu: float | None
    train_seconds: float
    trainable_params: int
    total_params: int
    resumed_from: int | None

    def stats(self) -> dict[str, Any]:
        """Just the ``TrainStats`` fields (of a subclass too), as plain JSON-able values."""
        return {f.name: getattr(self, f.name) for f in fields(TrainStats)}


@dataclass
class TrainResult(TrainStats):
    run_id: int
    output: VersionInfo
