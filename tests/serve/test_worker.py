"""The batch worker: results return to the right request, limits hold, dead texts are skipped."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Sequence

import httpx
import numpy as np
import pytest
from numpy.typing import NDArray

from fmstack.hub import Hub, VersionInfo
from fmstack.serve import start_server
from fmstack.serve.batching import Limits
from fmstack.serve.errors import ClientDisconnected, DeadlineExceeded, ModelNotReady, QueueFull
from fmstack.serve.models import hub_loader
from fmstack.serve.runtimes.base import Runtime, RuntimeInfo
from fmstack.serve.worker import BatchOutputMismatch, ModelWorker, Observer
from tests.serve.conftest import settings

pytestmark = pytest.mark.anyio


class EchoRuntime:
    """A fake runtime: each text's output is [its length, its first id]; records every batch."""

    def __init__(
        self,
        gate: threading.Event | None = None,
        fail: bool = False,
        together: threading.Barrier | None = None,
    ) -> None:
        self.batches: list[list[int]] = []
        self.gate = gate
        self.fail = fail
        self.rows_short = 0  # rows left out of the next answers: a runtime with a bug
        self.crash: BaseException | None = None  # raised by the next forward, past the worker's guard
        self.together = together  # each forward waits here until as many are in flight as it has parties

    @property
    def info(self) -> RuntimeInfo:
        parallel = self.together.parties if self.together else 1
        return RuntimeInfo(task="embedding", platform="fake", max_length=100, dimensions=2, batches=parallel)

    def encode(self, texts: Sequence[str]) -> list[list[int]]:
        return [[len(t)] * len(t) for t in texts]

    def forward(self, batch: Sequence[Sequence[int]]) -> NDArray[np.float32]:
        if self.gate is not None:
            self.gate.wait(5)
        if self.together is not None:
            self.together.wait()
        if self.fail:
            raise RuntimeError("forward failed")
        if self.crash is not None:
            raise self.crash
        self.batches.append([len(ids) for ids in batch])
        out = np.array([[len(ids), ids[0]] for ids in batch], dtype=np.float32)
        return out[: len(out) - self.rows_short]

    def close(self) -> None:
        pass


def _worker(runtime: EchoRuntime, max_wait_s: float = 0.0, **kw: int) -> ModelWorker:
    limits = Limits(
        max_tokens=kw.get("max_tokens", 1000), max_size=kw.get("max_size", 8), max_wait_s=max_wait_s
    )
    worker = ModelWorker("m", runtime, limits, max_queue=kw.get("max_queue", 100))  # type: ignore[arg-type]
    worker.start()
    return worker


async def test_each_request_gets_its_own_rows_in_its_own_order() -> None:
    runtime = EchoRuntime()
    worker = _worker(runtime, max_wait_s=0.05)
    deadline = time.monotonic() + 5
    requests = [["aaaa", "b"], ["cc"], ["dddddd", "ee", "f"]]
    tickets = [worker.submit(runtime.encode(texts), deadline) for texts in requests]
    results = await asyncio.gather(*(t.future for t in tickets))
    worker.close()
    for texts, out in zip(requests, results, strict=True):
        assert out[:, 0].tolist() == [len(t) for t in texts]
    assert sum(len(b) for b in runtime.batches) == 6
    assert all(b == sorted(b) for b in runtime.batches)  # length-sorted batches


async def test_a_runtime_of_two_batches_computes_two_at_once_and_rows_stay_in_order() -> None:
    # Each forward waits until two are in flight: a worker that ran one batch at a time would break
    # the barrier (after 5 s) and fail the request.
    runtime = EchoRuntime(together=threading.Barrier(2, timeout=5))
    worker = _worker(runtime, max_size=2)
    ticket = worker.submit([[n] * n for n in (1, 2, 3, 4)], time.monotonic() + 10)
    out = await ticket.future
    worker.close()
    assert out[:, 0].tolist() == [1, 2, 3, 4]
    assert sorted(runtime.batches) == [[1, 2], [3, 4]]


async def test_batches_stay_within_the_limits() -> None:
    runtime = EchoRuntime()
    worker = _worker(runtime, max_wait_s=0.05, max_size=3, max_tokens=12)
    ticket = worker.submit([[1] * 4] * 7, time.monotonic() + 5)
    await ticket.future
    worker.close()
    assert all(len(b) <= 3 and len(b) * max(b) <= 12 for b in runtime.batches)


async def test_a_full_queue_refuses_with_a_retry_hint() -> None:
    gate = threading.Event()
    worker = _worker(EchoRuntime(gate), max_queue=3)
    worker.submit([[1]], time.monotonic() + 5)  # taken by the worker, which blocks on the gate
    await asyncio.sleep(0.1)
    worker.submit([[1], [2]], time.monotonic() + 5)
    with pytest.raises(QueueFull, match="max-queue 3") as info:
        worker.submit([[1], [2]], time.monotonic() + 5)
    assert info.value.retry_after_s >= 1
    gate.set()
    worker.close()


async def test_texts_past_their_deadline_fail_without_compute() -> None:
    gate = threading.Event()
    runtime = EchoRuntime(gate)
    drops: list[tuple[str, int]] = []
    worker = _worker(runtime)
    worker.observer = Observer(drop=lambda reason, n: drops.append((reason, n)))
    first = worker.submit([[1]], time.monotonic() + 5)
    await asyncio.sleep(0.1)  # the worker is now blocked in forward
    late = worker.submit([[7, 7]], time.monotonic() + 0.05)
    await asyncio.sleep(0.2)
    gate.set()
    with pytest.raises(DeadlineExceeded):
        await late.future
    await first.future
    worker.close()
    assert [b for b in runtime.batches if 2 in b] == []
    assert ("deadline", 1) in drops


async def test_abandoned_requests_are_dropped_before_compute() -> None:
    gate = threading.Event()
    runtime = EchoRuntime(gate)
    drops: list[tuple[str, int]] = []
    worker = _worker(runtime)
    worker.observer = Observer(drop=lambda reason, n: drops.append((reason, n)))
    worker.submit([[1]], time.monotonic() + 5)
    await asyncio.sleep(0.1)  # the worker is now blocked in forward
    gone = worker.submit([[3, 3, 3], [3, 3, 3]], time.monotonic() + 5)
    gone.abandon("disconnected")  # as the loop's disconnect watcher does
    left = threading.Event()
    probed = worker.submit([[4, 4, 4, 4]], time.monotonic() + 5, gone=left.is_set)  # as uvicorn's flag
    stays = worker.submit([[5] * 5], time.monotonic() + 5, gone=lambda: False)
    left.set()
    gate.set()
    for ticket in (gone, probed):
        with pytest.raises(ClientDisconnected):
            await ticket.future
    assert (await stays.future).tolist() == [[5.0, 5.0]]
    worker.close()
    assert all(3 not in b and 4 not in b for b in runtime.batches)
    assert drops == [("disconnected", 3)]


async def test_a_failing_forward_fails_its_requests_and_the_worker_lives_on() -> None:
    runtime = EchoRuntime(fail=True)
    worker = _worker(runtime)
    ticket = worker.submit([[1]], time.monotonic() + 5)
    with pytest.raises(RuntimeError, match="forward failed"):
        await ticket.future
    runtime.fail = False
    assert (await worker.submit([[1, 2]], time.monotonic() + 5).future).tolist() == [[2.0, 1.0]]
    worker.close()


async def test_close_finishes_queued_texts_without_waiting_for_company() -> None:
    runtime = EchoRuntime()
    worker = _worker(runtime, max_wait_s=30.0)  # would wait 30 s for a fuller batch
    ticket = worker.submit([[1, 2]], time.monotonic() + 60)
    start = time.monotonic()
    await asyncio.to_thread(worker.close)
    assert time.monotonic() - start < 5
    assert (await ticket.future).shape == (1, 2)


async def test_a_wrong_row_count_fails_its_batch_clearly_and_the_next_request_succeeds() -> None:
    runtime = EchoRuntime()
    worker = _worker(runtime)
    runtime.rows_short = 1
    ticket = worker.submit([[1, 1], [2, 2]], time.monotonic() + 5)
    with pytest.raises(BatchOutputMismatch, match="returned 1 rows for a batch of 2 texts"):
        await ticket.future
    runtime.rows_short = 0
    assert (await worker.submit([[3, 3, 3]], time.monotonic() + 5).future).tolist() == [[3.0, 3.0]]
    assert worker.alive
    worker.close()


class Crash(BaseException):
    """What no ``except Exception`` catches (as a C extension's abort may raise)."""


async def test_a_worker_whose_thread_dies_fails_what_it_held_and_refuses_the_rest() -> None:
    gate = threading.Event()
    runtime = EchoRuntime(gate)
    worker = _worker(runtime)
    runtime.crash = Crash("boom")
    computing = worker.submit([[1]], time.monotonic() + 5)
    await asyncio.sleep(0.1)  # the worker is now blocked in forward
    queued = worker.submit([[2, 2]], time.monotonic() + 5)
    gate.set()
    for ticket in (computing, queued):  # answered now, not at their deadlines
        with pytest.raises(ModelNotReady, match="batch thread stopped"):
            await asyncio.wait_for(ticket.future, 2)
    assert not worker.alive and "Crash: boom" in str(worker.failure)
    with pytest.raises(ModelNotReady, match="restart the server"):
        worker.submit([[3]], time.monotonic() + 5)
    worker.close()


async def test_a_request_the_queue_cannot_serve_in_time_is_refused_with_the_drain_time() -> None:
    gate = threading.Event()
    worker = _worker(EchoRuntime(gate), max_queue=1000)
    worker.throughput.update(tokens=100, seconds=1.0)  # as measured: 100 tokens/s
    worker.submit([[1] * 50], time.monotonic() + 10)  # taken by the worker, which blocks on the gate
    await asyncio.sleep(0.1)
    worker.submit([[2] * 100, [3] * 100], time.monotonic() + 10)  # 2.5 s of work ahead: fits 10 s
    with pytest.raises(QueueFull, match="about 2.60 s") as info:
        worker.submit([[4] * 10], time.monotonic() + 1.0)
    assert info.value.retry_after_s == 3  # ceil(250 tokens x 0.01 s)
    assert worker.depth == 2  # the refused text never joined the queue
    gate.set()
    worker.close()


async def test_the_full_queue_retry_hint_is_the_measured_drain_time() -> None:
    gate = threading.Event()
    worker = _worker(EchoRuntime(gate), max_queue=2)
    worker.throughput.update(tokens=100, seconds=1.0)  # as measured: 100 tokens/s
    worker.submit([[1] * 100], time.monotonic() + 60)
    await asyncio.sleep(0.1)
    worker.submit([[1] * 100, [2] * 100], time.monotonic() + 60)
    with pytest.raises(QueueFull, match="max-queue 2") as info:
        worker.submit([[5]], time.monotonic() + 60)
    assert info.value.retry_after_s == 3  # 300 tokens queued or computing, at 100 tokens/s
    gate.set()
    worker.close()


class Crashing:
    """A real runtime whose forward passes raise ``Crash`` once ``crash`` is set."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.crash = False

    @property
    def info(self) -> RuntimeInfo:
        return self.runtime.info

    def encode(self, texts: Sequence[str]) -> list[list[int]]:
        return self.runtime.encode(texts)

    def forward(self, batch: Sequence[Sequence[int]]) -> NDArray[np.float32]:
        if self.crash:
            raise Crash("the runtime aborted")
        return self.runtime.forward(batch)

    def close(self) -> None:
        self.runtime.close()


def test_a_dead_worker_makes_readyz_503_with_the_reason(served_hub: Hub) -> None:
    real = hub_loader(served_hub, 1)
    made: list[Crashing] = []

    def load(ref: str) -> tuple[VersionInfo, Runtime]:
        version, runtime = real(ref)
        made.append(Crashing(runtime))
        return version, made[-1]

    body = {"model": "acme/intent", "input": "hello"}
    with (
        start_server(settings(["acme/intent"]), served_hub.settings, load=load) as server,
        httpx.Client(base_url=server.url, timeout=10) as client,
    ):
        assert client.post("/v1/classify", json=body).status_code == 200
        made[0].crash = True
        crashed = client.post("/v1/classify", json=body)
        assert crashed.status_code == 503 and "batch thread stopped" in crashed.json()["error"]["message"]
        ready = client.get("/readyz")
        assert ready.status_code == 503 and "Crash: the runtime aborted" in ready.json()["reason"]
        assert client.get("/v2/health/ready").status_code == 503
        assert client.get("/v2/models/acme/intent/ready").status_code == 503
        start = time.monotonic()
        assert client.post("/v1/classify", json=body).status_code == 503  # refused, not left to time out
        assert time.monotonic() - start < 5
