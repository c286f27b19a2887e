"""The health check a slot passes before the agent switches to it (and again after a restart on
probation): the bundle's golden inputs must give its golden outputs within tolerance (the same label
for classifiers), and a single-text prediction must stay under the latency bound."""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fmstack_edge.bundle import Health, read_golden
from fmstack_edge.errors import EdgeError, UpdateRejected
from fmstack_edge.model import Model


@dataclass(frozen=True)
class HealthReport:
    max_difference: float
    latency_ms: float  # median single-text prediction


def check(
    folder: Path, health: Health, threads: int | None = None, optimized: Path | None = None
) -> tuple[Model, HealthReport]:
    """The loaded model of ``folder`` (``optimized``: see ``Model``) and how it did; ``UpdateRejected``
    naming the failure otherwise."""
    inputs, expected = read_golden(folder)
    try:
        model = Model(folder, threads=threads, optimized=optimized)
        got = model.outputs(inputs)  # (inputs, labels) or (inputs, dimensions)
    except EdgeError as exc:
        raise UpdateRejected(f"health check: the model does not run ({exc})") from None
    want = np.asarray(expected, dtype=np.float32)
    if got.shape != want.shape:
        raise UpdateRejected(f"health check: outputs of shape {got.shape}, golden outputs {want.shape}")
    difference = float(np.abs(got - want).max())
    if difference > health.tolerance:
        raise UpdateRejected(
            f"health check: outputs differ from the golden outputs by {difference:.4g} "
            f"(tolerance {health.tolerance})"
        )
    if model.task == "classification" and (got.argmax(axis=1) != want.argmax(axis=1)).any():
        raise UpdateRejected("health check: a golden input got another label than when it was published")
    latencies = []
    for text in inputs[:8]:
        start = time.perf_counter()
        model.outputs([text])
        latencies.append((time.perf_counter() - start) * 1000)
    latency = statistics.median(latencies)
    if latency > health.max_latency_ms:
        raise UpdateRejected(
            f"health check: a prediction takes {latency:.1f} ms, over the bundle's bound of "
            f"{health.max_latency_ms:g} ms"
        )
    return model, HealthReport(difference, latency)
