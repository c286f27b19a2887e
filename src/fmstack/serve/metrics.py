"""Prometheus metrics of one server, in a registry of its own (two apps in one process never clash).

fmstack_serve_requests_total{model,endpoint,status}   requests answered
fmstack_serve_request_seconds{model,endpoint}         latency, arrival to response
fmstack_serve_batch_size{model}                       texts per forward pass
fmstack_serve_batch_seconds{model}                    forward-pass time
fmstack_serve_queue_depth{model}                      texts waiting for a batch
fmstack_serve_tokens_total{model}                     tokens computed (padding excluded)
fmstack_serve_dropped_total{model,reason}             texts skipped before compute (disconnected, deadline)
fmstack_serve_model_version{model}                    the hub version number being served
fmstack_serve_load_failures_total{model}              versions an alias or latest ref moved to that failed to load
"""

from __future__ import annotations

import re
import time
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from fmstack.serve.worker import Observer

_LATENCY = (0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 30)
_SIZES = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512)


class ServeMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "fmstack_serve_requests", "Requests answered.", ["model", "endpoint", "status"], registry=r
        )
        self.latency = Histogram(
            "fmstack_serve_request_seconds",
            "Request latency in seconds.",
            ["model", "endpoint"],
            buckets=_LATENCY,
            registry=r,
        )
        self.batch_size = Histogram(
            "fmstack_serve_batch_size", "Texts per forward pass.", ["model"], buckets=_SIZES, registry=r
        )
        self.batch_seconds = Histogram(
            "fmstack_serve_batch_seconds", "Forward-pass seconds.", ["model"], buckets=_LATENCY, registry=r
        )
        self.queue_depth = Gauge(
            "fmstack_serve_queue_depth", "Texts waiting for a batch.", ["model"], registry=r
        )
        self.tokens = Counter("fmstack_serve_tokens", "Tokens computed.", ["model"], registry=r)
        self.dropped = Counter(
            "fmstack_serve_dropped", "Texts skipped before compute.", ["model", "reason"], registry=r
        )
        self.version = Gauge(
            "fmstack_serve_model_version", "Hub version number being served.", ["model"], registry=r
        )
        self.load_failures = Counter(
            "fmstack_serve_load_failures",
            "Versions a served ref moved to that failed to load (the previous one kept serving).",
            ["model"],
            registry=r,
        )

    def observer(self, model: str) -> Observer:
        size = self.batch_size.labels(model)
        seconds = self.batch_seconds.labels(model)
        tokens = self.tokens.labels(model)
        depth = self.queue_depth.labels(model)

        def batch(n: int, token_count: int, elapsed: float) -> None:
            size.observe(n)
            seconds.observe(elapsed)
            tokens.inc(token_count)

        return Observer(
            batch=batch,
            depth=depth.set,
            drop=lambda reason, count: self.dropped.labels(model, reason).inc(count),
        )


_V1 = frozenset({"/v1/embeddings", "/v1/classify", "/v1/models", "/v1/feedback"})
_ENDPOINTS = [
    (re.compile(r"^/v2/models/.+/infer$"), "/v2/models/{name}/infer"),
    (re.compile(r"^/v2/models/.+/ready$"), "/v2/models/{name}/ready"),
    (re.compile(r"^/v2/models/.+/config$"), "/v2/models/{name}/config"),
    (re.compile(r"^/v2/models/.+$"), "/v2/models/{name}"),
]


def endpoint_of(path: str) -> str | None:
    """The endpoint label of an inference path, the route's template (the model's name is a label of its
    own); None for paths not worth a series (health, metrics,
    paths nobody serves: a label per unknown path would let clients grow /metrics without bound)."""
    if path in _V1:
        return path
    return next((name for pattern, name in _ENDPOINTS if pattern.match(path)), None)


class MetricsMiddleware:
    """Counts and times inference requests, whatever answered them (handler, validation, error).

    A plain ASGI middleware (not ``BaseHTTPMiddleware``, which costs a task per request); the handler
    names the model in ``request.state.model``, which lives in ``scope["state"]``, once it has found
    it among the served models (so label values are bounded by what the server serves).
    """

    def __init__(self, app: ASGIApp, metrics: ServeMetrics) -> None:
        self.app = app
        self.metrics = metrics
        # prometheus_client's ``labels`` validates and takes a lock on every call: keep each label
        # set's counter and histogram (models x endpoints x statuses: a few dozen).
        self._series: dict[tuple[str, str, int], tuple[Counter, Histogram]] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        endpoint = endpoint_of(scope["path"]) if scope["type"] == "http" else None
        if endpoint is None:
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            state: dict[str, Any] = scope.get("state") or {}
            requests, latency = self._series_of(str(state.get("model", "")), endpoint, status)
            requests.inc()
            latency.observe(time.perf_counter() - start)

    def _series_of(self, model: str, endpoint: str, status: int) -> tuple[Counter, Histogram]:
        key = (model, endpoint, status)
        series = self._series.get(key)
        if series is None:
            requests = self.metrics.requests.labels(model, endpoint, str(status))
            series = self._series[key] = (requests, self.metrics.latency.labels(model, endpoint))
        return series
