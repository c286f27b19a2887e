"""The monitor's figures as Prometheus gauges on the inference server's ``/metrics``.

``fmstack serve --log-predictions`` hands this collector to the server (``create_app(collectors=...)``):
the serve layer cannot compute drift, which lives here, above it. A background thread rebuilds each
served model's report over the last ``window_s`` every ``interval_s``; a scrape only reads the last
figures, so it never waits for the log to be read.

fmstack_monitor_predictions{model}          predictions logged in the window
fmstack_monitor_confidence_mean{model}      their mean top score
fmstack_monitor_latency_p95_ms{model}       95th percentile latency of logged predictions
fmstack_monitor_label_psi{model}            predicted labels against the training data's (PSI)
fmstack_monitor_confidence_psi{model}       confidence against the model's own on held-out data (PSI)
fmstack_monitor_feedback{model}             feedback rows in the window
fmstack_monitor_feedback_accuracy{model}    accuracy on them
fmstack_monitor_updated_seconds{model}      when these figures were computed (Unix time)
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from fmstack.hub import HubApi
from fmstack.monitor.report import Report, build

log = logging.getLogger("fmstack.monitor")

_GAUGES = {
    "predictions": "Predictions logged in the monitor's window.",
    "confidence_mean": "Mean top score of the window's predictions.",
    "latency_p95_ms": "95th percentile latency (ms) of the window's logged predictions.",
    "label_psi": "PSI of predicted labels against the training data's labels.",
    "confidence_psi": "PSI of confidence against the model's confidence on held-out data.",
    "feedback": "Feedback rows in the window.",
    "feedback_accuracy": "Accuracy on the window's feedback.",
    "updated_seconds": "Unix time these figures were computed.",
}


def figures(report: Report) -> dict[str, float | None]:
    return {
        "predictions": float(report.predictions),
        "confidence_mean": report.confidence.mean if report.confidence else None,
        "latency_p95_ms": report.latency_ms.p95 if report.latency_ms else None,
        "label_psi": report.drift.label_psi,
        "confidence_psi": report.drift.confidence_psi,
        "feedback": float(report.feedback.count),
        "feedback_accuracy": report.feedback.accuracy,
        "updated_seconds": time.time(),
    }


class MonitorGauges(Collector):
    def __init__(
        self,
        open_hub: Callable[[], HubApi],
        models: list[str],
        root: Path,
        interval_s: float = 60.0,
        window_s: float = 3600.0,
    ) -> None:
        self.open_hub = open_hub
        self.models = models
        self.root = root
        self.interval_s = interval_s
        self.window_s = window_s
        self.latest: dict[str, dict[str, float | None]] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="fmstack-monitor-gauges", daemon=True)

    def start(self) -> MonitorGauges:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()

    def refresh(self, hub: HubApi) -> None:
        since = datetime.now(UTC) - timedelta(seconds=self.window_s)
        for model in self.models:
            try:
                self.latest[model] = figures(build(hub, model, self.root, since))
            except Exception as exc:  # a figure that cannot be computed must not stop the others
                log.warning("monitor gauges for %s: %s", model, exc)

    def _run(self) -> None:
        with self.open_hub() as hub:
            while not self._stop.is_set():
                self.refresh(hub)
                self._stop.wait(self.interval_s)

    def collect(self) -> Iterator[Metric]:
        latest = dict(self.latest)  # a snapshot: the thread replaces entries, never mutates them
        for name, help_text in _GAUGES.items():
            family = GaugeMetricFamily(f"fmstack_monitor_{name}", help_text, labels=["model"])
            for model, values in latest.items():
                value = values.get(name)
                if value is not None:
                    family.add_metric([model], value)
            yield family
