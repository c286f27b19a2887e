"""Deadline-aware admission: the throughput estimate, the refusal rule, the per-request timeout
header, and the same through the HTTP server (429 with Retry-After, 504 without compute)."""

from __future__ import annotations

import asyncio
import math
import threading
import time
from collections.abc import Callable, Sequence

import httpx
import numpy as np
import pytest
from numpy.typing import NDArray

from fmstack.errors import InvalidInput
from fmstack.hub import Hub, VersionInfo
from fmstack.serve import RunningServer, start_server
from fmstack.serve.admission import HEADROOM, Throughput, refusal, request_timeout, retry_after
from fmstack.serve.models import hub_loader
from fmstack.serve.runtimes.base import Runtime, RuntimeInfo
from tests.serve.conftest import settings


def test_throughput_is_tokens_over_busy_time_whatever_the_batches() -> None:
    rate = Throughput(decay=1.0)
    assert rate.drain_s(100) is None and rate.tokens_per_s() is None
    # Two threads, 100-token batches of 1 s each, finishing half a second apart: each completion
    # reports the half second since the previous one, so the rate is both threads' together.
    for _ in range(4):
        rate.update(tokens=100, seconds=0.5)
    assert rate.tokens_per_s() == pytest.approx(200.0)
    assert rate.drain_s(300) == pytest.approx(1.5)


def test_throughput_follows_a_change_of_load() -> None:
    rate = Throughput(decay=0.5)
    rate.update(tokens=100, seconds=1.0)
    rate.update(tokens=100, seconds=0.25)  # decayed sums: 150 tokens over 0.75 s
    assert rate.tokens_per_s() == pytest.approx(200.0)
    for _ in range(20):
        rate.update(tokens=100, seconds=0.1)
    assert rate.tokens_per_s() == pytest.approx(1000.0, rel=1e-3)


def test_a_request_that_fits_its_deadline_is_admitted() -> None:
    rate = Throughput()
    rate.update(tokens=100, seconds=1.0)
    assert refusal(rate, ahead_tokens=0, own_tokens=10_000, budget_s=0.1) is None  # idle: always
    assert refusal(rate, ahead_tokens=60, own_tokens=10, budget_s=1.5) is None  # 0.7 s of 0.75 allowed
    assert refusal(rate, ahead_tokens=60, own_tokens=10, budget_s=1.3) is not None  # 0.7 s of 0.65
    assert refusal(Throughput(), ahead_tokens=10**6, own_tokens=10, budget_s=0.1) is None  # unmeasured


def test_a_request_behind_too_much_work_is_refused_with_the_drain_time() -> None:
    rate = Throughput()
    rate.update(tokens=100, seconds=1.0)  # 0.01 s per token
    refused = refusal(rate, ahead_tokens=250, own_tokens=10, budget_s=2.0)
    assert refused is not None
    assert refused.wait_s == pytest.approx(2.6) and refused.wait_s > HEADROOM * 2.0
    assert refused.retry_after_s == 3  # the 250 tokens ahead drain in 2.5 s
    assert retry_after(rate, 250) == 3 and retry_after(rate, 1) == 1 and retry_after(Throughput(), 9) == 1


def test_the_timeout_header_can_only_shorten_the_servers_deadline() -> None:
    assert request_timeout(None, 30.0) == 30.0
    assert request_timeout("1.5", 30.0) == 1.5
    assert request_timeout(" 2 ", 30.0) == 2.0
    assert request_timeout("120", 30.0) == 30.0
    for bad in ("soon", "0", "-1", "nan", "inf", ""):
        with pytest.raises(InvalidInput, match="X-Request-Timeout"):
            request_timeout(bad, 30.0)


class Gated:
    """A real runtime behind a gate: each forward waits for ``gate`` and takes at least ``floor_s``;
    records the number of texts of every batch it computes."""

    def __init__(self, runtime: Runtime, floor_s: float = 0.0) -> None:
        self.runtime = runtime
        self.gate = threading.Event()
        self.gate.set()
        self.floor_s = floor_s
        self.batches: list[int] = []

    @property
    def info(self) -> RuntimeInfo:
        return self.runtime.info

    def encode(self, texts: Sequence[str]) -> list[list[int]]:
        return self.runtime.encode(texts)

    def forward(self, batch: Sequence[Sequence[int]]) -> NDArray[np.float32]:
        start = time.perf_counter()
        self.gate.wait(10)
        self.batches.append(len(batch))
        out = self.runtime.forward(batch)
        time.sleep(max(0.0, self.floor_s - (time.perf_counter() - start)))
        return out

    def close(self) -> None:
        self.runtime.close()


def _gated_server(hub: Hub, floor_s: float = 0.0) -> tuple[RunningServer, Gated]:
    real = hub_loader(hub, 1)
    made: list[Gated] = []

    def load(ref: str) -> tuple[VersionInfo, Runtime]:
        version, runtime = real(ref)
        made.append(Gated(runtime, floor_s))
        return version, made[-1]

    server = start_server(settings(["acme/intent"], max_wait_ms=0), hub.settings, load=load)
    return server, made[0]


def _post(
    client: httpx.AsyncClient, text: str, timeout_s: float | None = None
) -> asyncio.Task[httpx.Response]:
    headers = {"X-Request-Timeout": str(timeout_s)} if timeout_s is not None else {}
    body = {"model": "acme/intent", "input": text}
    return asyncio.ensure_future(client.post("/v1/classify", json=body, headers=headers))


def _run(scenario: Callable[[httpx.AsyncClient], object], url: str) -> object:
    async def main() -> object:
        async with httpx.AsyncClient(base_url=url, timeout=30) as client:
            return await scenario(client)  # type: ignore[misc]

    return asyncio.run(main())


def test_a_request_that_timed_out_in_the_queue_is_never_computed(served_hub: Hub) -> None:
    server, runtime = _gated_server(served_hub)
    with server:
        runtime.gate.clear()

        async def scenario(client: httpx.AsyncClient) -> tuple[httpx.Response, httpx.Response]:
            first = _post(client, "computing while the second waits")
            await asyncio.sleep(0.3)  # the first is in forward, held by the gate
            late = await _post(client, "too late", timeout_s=0.3)
            runtime.gate.set()
            return await first, late

        first, late = _run(scenario, server.url)  # type: ignore[misc]
        assert first.status_code == 200
        assert late.status_code == 504
        assert "0.3 s (X-Request-Timeout" in late.json()["error"]["message"]
        assert runtime.batches == [1]  # the late text was dropped, not computed


def test_a_bad_timeout_header_is_refused_before_any_work(served_hub: Hub) -> None:
    server, runtime = _gated_server(served_hub)
    with server, httpx.Client(base_url=server.url) as client:
        r = client.post(
            "/v1/classify", json={"model": "acme/intent", "input": "x"}, headers={"X-Request-Timeout": "1s"}
        )
        assert r.status_code == 422 and "X-Request-Timeout '1s'" in r.json()["error"]["message"]
        assert runtime.batches == []


def test_a_request_that_cannot_finish_in_time_is_refused_at_once(served_hub: Hub) -> None:
    server, runtime = _gated_server(served_hub, floor_s=0.2)  # every batch takes at least 0.2 s
    with server:
        worker = server.state.models.models["acme/intent"].current.worker  # type: ignore[union-attr]

        async def scenario(client: httpx.AsyncClient) -> list[httpx.Response | float]:
            await _post(client, "measures the throughput")
            runtime.gate.clear()
            computing = _post(client, "computing")
            await asyncio.sleep(0.2)
            queued = _post(client, "queued behind it")
            await asyncio.sleep(0.2)
            ahead = worker._queued_tokens + worker._computing_tokens
            start = time.perf_counter()
            refused = await _post(client, "cannot make it", timeout_s=0.25)
            took = time.perf_counter() - start
            patient = _post(client, "can wait", timeout_s=20)
            await asyncio.sleep(0.1)
            runtime.gate.set()
            return [refused, took, await computing, await queued, await patient, ahead]

        refused, took, *answered, ahead = _run(scenario, server.url)  # type: ignore[misc]
        assert isinstance(refused, httpx.Response) and isinstance(took, float)
        assert refused.status_code == 429 and took < 0.25  # answered at once, not at the deadline
        expected = math.ceil(ahead / worker.throughput.tokens_per_s())  # type: ignore[operator]
        assert abs(int(refused.headers["Retry-After"]) - expected) <= 1
        assert "X-Request-Timeout" in refused.json()["error"]["message"]
        assert [r.status_code for r in answered] == [200, 200, 200]  # type: ignore[union-attr]
        assert sum(runtime.batches) == 4  # the refused text was never queued
