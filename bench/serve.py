"""Serving throughput and latency: ``fmstack serve`` vs a naive server vs the offline limit.

    .venv/bin/python bench/serve.py --int8                # fp32 and int8, concurrency 1 8 32 64, ~6 min
    .venv/bin/python bench/serve.py --seconds 5 --concurrency 32 --no-st
    .venv/bin/python bench/serve.py --int8 --goodput --deadline 1 --overload 2   # goodput under overload
    .venv/bin/python bench/serve.py --int8 --concurrency 32 --no-st --baseline-src /tmp/before  # A/B
    .venv/bin/python bench/serve.py --logging --concurrency 32 --seconds 4 --repeats 6  # prediction log cost

``--baseline-src DIR`` also serves the last model with the fmstack of another source tree (for instance
``git archive HEAD~1 src | tar -x -C /tmp/before``), measured in the same slices as ``before <model>``.

``--goodput`` measures, per server and in ``--repeats`` alternating rounds: its capacity (requests/s
answered 200 by ``--goodput-concurrency`` closed-loop clients), then an open-loop Poisson arrival of
``--overload`` times that rate for ``--seconds``, each request with ``X-Request-Timeout: --deadline``
(the servers also run with ``--request-timeout --deadline``, for a baseline that does not read the
header). It reports the share answered 200 within the deadline (client side, from the scheduled
arrival) as a share of capacity, the shares 429 and 504, the p99 of the 200s, the median Retry-After and
how long the server took to answer everything after the last arrival; then the medians of the rounds.

For each concurrency level a bounded async load generator (loopback only; at most ``--seconds`` and
``--max-requests`` per level) sends one text per ``POST /v1/embeddings`` request to
  (a) ``fmstack serve`` on the built-in MiniLM as an fp32 ONNX export from ``fmstack compress`` (the
      PyTorch folder when the export fails here), and with ``--int8`` a second ``fmstack serve`` on its
      int8 export (``fmstack compress --quantize int8``, what the demo puts in production),
  (b) ``bench/naive_server.py`` (FastAPI + transformers, fp32 PyTorch, one forward per request), and
      with ``--int8`` a second one with int8 Linear layers (PyTorch ``quantize_dynamic``): each fmstack
      server is compared with the naive server of its own precision (fp32 vs fp32, int8 vs int8), and
      int8 also with naive fp32, the mixed ratio that counts the server's gain times quantisation's,
and (c) the offline limit of each served version: the same runtime over the same texts, batched by the
same rules at the same batch size, with as many texts in the system as the level's concurrency and no
server: the best a server could do with that runtime at that load. For comparison it also reports the
runtime fed from a deep queue (more texts waiting than ``c`` clients can send).

Each level is cut into ``--rounds`` slices in which every target takes its turn (offline limits for
half as long as servers), and each target's slices are summed: these shared machines drift in speed
over minutes, and both sides of a ratio then see the same stretches of time.

Ratios of two targets are also taken slice by slice (the same stretch of time) and reported as the
median of the slices and their range. The embedding comparison with sentence-transformers ``encode``
(fp32, and with ``--int8`` its model quantised by ``quantize_dynamic``) runs ``--st-rounds`` alternating
rounds of every runtime and reports medians and ranges the same way.

``--logging`` serves one classifier (MiniLM with a 77-label head, ONNX fp32) twice, without and with
``--log-predictions 1``, and measures ``/v1/classify`` requests/s of both in ``--repeats`` rounds whose
order alternates, reporting the per-round ratio logging / plain (median and range; goal >= 0.95x).

Texts: BANKING77's test split when ../shared/datasets/banking77 exists, else generated sentences.
Goals at concurrency 32: fmstack >= 8x naive requests/s, >= 0.85 of offline, p99 <= 2x p50; embedding
throughput of the serving runtime >= 3x sentence-transformers ``encode``.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Coroutine, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psutil
import uvloop

ROOT = Path(__file__).resolve().parent.parent
BANKING77 = ROOT.parent / "shared" / "datasets" / "banking77" / "test.csv"
FMSTACK = str(Path(sys.executable).parent / "fmstack")


@dataclass
class Sample:
    """One stretch of load on one target: the slices of a level are summed into its ``Level``."""

    latencies: list[float]  # of every request, those answered after ``seconds`` included
    errors: int
    # From the first answer until the first client stopped sending: the stretch at full concurrency.
    seconds: float
    answered: int  # requests answered within ``seconds``
    cpu_s: float = 0.0  # the server's CPU during the stretch, all threads
    loop_cpu_s: float = 0.0  # of which its main thread


@dataclass
class Level:
    target: str
    concurrency: int
    requests: int
    errors: int
    seconds: float
    rps: float
    p50_ms: float
    p99_ms: float
    cpu_ms_per_request: float = 0.0  # CPU time the server process spent per request (all threads)
    loop_cpu_ms_per_request: float = 0.0  # of which its main thread: the event loop (HTTP, JSON, queueing)
    slice_rps: list[float] = field(default_factory=list)  # req/s of each slice, in the order measured


# -- load generation ------------------------------------------------------------------------------


class Connection:
    """A minimal keep-alive HTTP/1.1 client over asyncio streams.

    The load generator shares the machine's cores with the server under test, so it must cost as
    little CPU per request as possible: httpx's async client spends several times more per request
    than this, which on 2 cores would measure the client as much as the server. It handles exactly
    what the servers here send back: a status line, headers with Content-Length, a body.
    """

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None
        self.retry_after: float | None = None  # of the last answer

    async def post(self, path: str, body: bytes, headers: str = "") -> int:
        """Status of one POST; ``headers``: extra header lines, each ending in CRLF."""
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        assert self.reader is not None
        head = (
            f"POST {path} HTTP/1.1\r\nHost: {self.host}\r\nContent-Type: application/json\r\n"
            f"{headers}Content-Length: {len(body)}\r\n\r\n"
        )
        self.writer.write(head.encode() + body)
        status = int((await self.reader.readline()).split()[1])
        length = 0
        self.retry_after = None
        while (line := await self.reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"retry-after":
                self.retry_after = float(value)
        await self.reader.readexactly(length)
        return status

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


def load(level: Coroutine[Any, Any, Sample]) -> Sample:
    """Run a level on uvloop: its event loop costs the load generator about 0.055 ms of CPU per
    request against asyncio's 0.09 (measured at concurrency 32), CPU the servers then have."""
    return uvloop.run(level)


async def run_level(
    url: str,
    model: str,
    texts: Sequence[str],
    concurrency: int,
    seconds: float,
    max_requests: int,
    path: str = "/v1/embeddings",
) -> Sample:
    parsed = httpx.URL(url)
    latencies: list[float] = []
    answered_at: list[float] = []
    errors = 0
    issued = 0
    stop_at = time.perf_counter() + seconds
    bodies = [json.dumps({"model": model, "input": t}).encode() for t in texts]
    # The rate counts answers from the first answer (before it the pipeline is filling: the first
    # batches compute, nothing is answered yet) until the first client stops sending (after it the
    # level drains at ever lower concurrency). Both edges would otherwise count each slice's fill
    # and drain as load; the offline limit has neither.
    stopped: list[float] = []

    async def client(index: int) -> None:
        nonlocal issued, errors
        conn = Connection(parsed.host, parsed.port or 80)
        sent = False
        try:
            while issued < max_requests and time.perf_counter() < stop_at:
                sent = True
                body = bodies[(issued + index * 7919) % len(bodies)]
                issued += 1
                start = time.perf_counter()
                status = await conn.post(path, body)
                now = time.perf_counter()
                if status == 200:  # a refusal (429) or a timeout (504) is no throughput
                    answered_at.append(now)
                latencies.append(now - start)
                errors += status != 200
            if sent:  # a client left without work by --max-requests never sent at full concurrency
                stopped.append(time.perf_counter())
        finally:
            conn.close()

    await asyncio.gather(*(client(i) for i in range(concurrency)))
    if not answered_at:
        return Sample(latencies, errors, 0.0, 0)
    first, last = min(answered_at), stopped[0]
    answered = sum(1 for t in answered_at if first < t <= last)
    return Sample(latencies, errors, last - first, answered)


def summarize(target: str, concurrency: int, samples: Sequence[Sample]) -> Level:
    ordered = sorted(x for s in samples for x in s.latencies)
    elapsed = sum(s.seconds for s in samples)
    requests = max(len(ordered), 1)
    return Level(
        target=target,
        concurrency=concurrency,
        requests=len(ordered),
        errors=sum(s.errors for s in samples),
        seconds=round(elapsed, 2),
        rps=round(sum(s.answered for s in samples) / elapsed, 1) if elapsed else 0.0,
        p50_ms=round(1000 * statistics.median(ordered), 2),
        p99_ms=round(1000 * ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))], 2),
        cpu_ms_per_request=round(1000 * sum(s.cpu_s for s in samples) / requests, 2),
        loop_cpu_ms_per_request=round(1000 * sum(s.loop_cpu_s for s in samples) / requests, 2),
        slice_rps=[round(s.answered / s.seconds, 1) if s.seconds else 0.0 for s in samples],
    )


def slice_ratio(a: Level, b: Level) -> str:
    """``a``'s req/s over ``b``'s, slice by slice (each pair measured in the same round): the median
    and the range."""
    ratios = [x / y for x, y in zip(a.slice_rps, b.slice_rps, strict=True) if y > 0]
    if not ratios:
        return "n/a"
    return f"{statistics.median(ratios):.2f}x ({min(ratios):.2f}-{max(ratios):.2f})"


# -- goodput under overload ---------------------------------------------------------------------


@dataclass
class Overload:
    """One stretch of open-loop load on one server: requests arrive at ``rate`` per second (Poisson),
    whatever the answers, each with the same deadline; latency counts from the scheduled arrival, so a
    load generator that falls behind shows as latency, not as a lower rate."""

    target: str
    capacity_rps: float  # closed-loop req/s of the same server just before
    rate: float  # arrivals per second offered
    deadline_s: float
    sent: int
    seconds: float
    ok_in_time: int  # 200 within the deadline, client side
    ok_late: int  # 200 after it
    refused: int  # 429
    timed_out: int  # 504
    other: int  # any other status, or a broken connection
    p50_ok_ms: float  # of the 200s in time
    p99_ok_ms: float
    retry_after_s: float  # median Retry-After of the 429s (0: none)
    drain_s: float  # from the last arrival to the last answer

    @property
    def goodput_share(self) -> float:
        """Answers within the deadline per second, as a share of the capacity."""
        return self.ok_in_time / self.seconds / self.capacity_rps if self.capacity_rps else 0.0

    def share(self, count: int) -> float:
        return count / self.sent if self.sent else 0.0


async def open_loop(
    url: str, model: str, texts: Sequence[str], rate: float, seconds: float, deadline_s: float, seed: int
) -> tuple[list[tuple[int, float, float | None]], float, float]:
    """(status, latency s, Retry-After) of every request, the seconds arrivals lasted, and the drain
    time after the last arrival. A request takes an idle keep-alive connection or opens one."""
    parsed = httpx.URL(url)
    bodies = [json.dumps({"model": model, "input": t}).encode() for t in texts]
    headers = f"X-Request-Timeout: {deadline_s}\r\n"
    idle: list[Connection] = []
    results: list[tuple[int, float, float | None]] = []
    tasks: set[asyncio.Task[None]] = set()

    async def one(index: int, scheduled: float) -> None:
        conn = idle.pop() if idle else Connection(parsed.host, parsed.port or 80)
        try:
            status = await conn.post("/v1/embeddings", bodies[index % len(bodies)], headers)
        except (OSError, asyncio.IncompleteReadError, ValueError, IndexError):
            conn.close()
            results.append((0, time.perf_counter() - scheduled, None))
            return
        results.append((status, time.perf_counter() - scheduled, conn.retry_after))
        idle.append(conn)

    rng = random.Random(seed)
    start = time.perf_counter()
    arrival, index = start, 0
    while (arrival := arrival + rng.expovariate(rate)) < start + seconds:
        delay = arrival - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        task = asyncio.create_task(one(index, arrival))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
        index += 1
    last = time.perf_counter()
    await asyncio.gather(*tasks)
    for conn in idle:
        conn.close()
    return results, last - start, time.perf_counter() - last


def capacity_of(url: str, ref: str, texts: Sequence[str], args: argparse.Namespace) -> float:
    """Requests/s answered 200 by ``--goodput-concurrency`` closed-loop clients with no deadline of their
    own (the server's default ``--request-timeout``): what the server sustains on this machine now."""
    sample = load(run_level(url, ref, texts, args.goodput_concurrency, args.seconds / 2, 10**7))
    if sample.errors:
        print(f"  ({sample.errors} of {len(sample.latencies)} capacity requests not 200)")
    time.sleep(1.0)  # let the closed loop's last answers go
    return sample.answered / sample.seconds  # 200s only: refusals and timeouts are no capacity


def overload(
    target: str,
    url: str,
    ref: str,
    texts: Sequence[str],
    args: argparse.Namespace,
    capacity: float,
    seed: int,
) -> Overload:
    """``--overload`` times ``capacity``, open loop, each request with the deadline."""
    rate = args.overload * capacity
    results, seconds, drain = load(open_loop(url, ref, texts, rate, args.seconds, args.deadline, seed))
    ok = sorted(latency for status, latency, _ in results if status == 200 and latency <= args.deadline)
    retries = [r for status, _, r in results if status == 429 and r is not None]

    def pct(q: float) -> float:
        return round(1000 * ok[min(len(ok) - 1, int(q * len(ok)))], 1) if ok else 0.0

    statuses = [status for status, _, _ in results]
    return Overload(
        target=target,
        capacity_rps=round(capacity, 1),
        rate=round(rate, 1),
        deadline_s=args.deadline,
        sent=len(results),
        seconds=round(seconds, 2),
        ok_in_time=len(ok),
        ok_late=statuses.count(200) - len(ok),
        refused=statuses.count(429),
        timed_out=statuses.count(504),
        other=sum(s not in (200, 429, 504) for s in statuses),
        p50_ok_ms=pct(0.5),
        p99_ok_ms=pct(0.99),
        retry_after_s=statistics.median(retries) if retries else 0.0,
        drain_s=round(drain, 2),
    )


def run_goodput(
    ports: dict[str, tuple[str, str]], texts: Sequence[str], args: argparse.Namespace
) -> list[Overload]:
    """``--repeats`` rounds: the capacity of the first server (this tree's), then every server in turn
    under ``--overload`` times that same rate, with the same arrival times."""
    runs: list[Overload] = []
    first_url, first_ref = next(iter(ports.values()))
    for repeat in range(args.repeats):
        capacity = capacity_of(first_url, first_ref, texts, args)
        for name, (url, ref) in ports.items():
            runs.append(overload(name, url, ref, texts, args, capacity, seed=repeat))
            show_overload(runs[-1])
    return runs


def show_overload(o: Overload) -> None:
    print(
        f"  {o.target:<13} capacity {o.capacity_rps:>7.1f} req/s, offered {o.rate:>7.1f}/s for {o.seconds} s: "
        f"{o.share(o.ok_in_time):.1%} 200 in time ({o.goodput_share:.2f} of capacity), "
        f"{o.share(o.ok_late):.1%} 200 late, {o.share(o.refused):.1%} 429, {o.share(o.timed_out):.1%} 504, "
        f"{o.other} other; p50/p99 of the 200s {o.p50_ok_ms}/{o.p99_ok_ms} ms; Retry-After "
        f"{o.retry_after_s} s, drained in {o.drain_s} s",
        flush=True,
    )


def report_goodput(runs: list[Overload]) -> None:
    """Per-target medians over the repeats (markdown)."""
    print(
        "\n| target | runs | capacity req/s | offered /s | 200 in time, share of capacity | 200 in time "
        "| 200 late | 429 | 504 | p99 of the 200s ms | Retry-After s | drain s |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for target in dict.fromkeys(o.target for o in runs):
        mine = [o for o in runs if o.target == target]

        def med(values: list[float]) -> float:
            return statistics.median(values)

        print(
            f"| {target} | {len(mine)} | {med([o.capacity_rps for o in mine]):.1f} "
            f"| {med([o.rate for o in mine]):.1f} | **{med([o.goodput_share for o in mine]):.2f}** "
            f"| {med([o.share(o.ok_in_time) for o in mine]):.1%} | {med([o.share(o.ok_late) for o in mine]):.1%} "
            f"| {med([o.share(o.refused) for o in mine]):.1%} | {med([o.share(o.timed_out) for o in mine]):.1%} "
            f"| {med([o.p99_ok_ms for o in mine]):.1f} | {med([o.retry_after_s for o in mine]):.1f} "
            f"| {med([o.drain_s for o in mine]):.2f} |"
        )


# -- the three targets ----------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start(cmd: list[str], url: str, env: dict[str, str]) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"{cmd[0]} exited: {proc.stderr.read().decode() if proc.stderr else ''}")
        try:
            if httpx.get(f"{url}/readyz").status_code == 200:
                return proc
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    proc.kill()
    raise SystemExit(f"{' '.join(cmd)} was not ready in 180 s")


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()


def warm_up(url: str, model: str, texts: Sequence[str]) -> None:
    load(run_level(url, model, texts, 4, 2.0, 200))  # first calls allocate buffers


@dataclass
class _Item:
    ids: list[int]
    arrival: float
    deadline: float = float("inf")
    dropped: bool = False

    @property
    def length(self) -> int:
        return len(self.ids)


class Offline:
    """The serving runtime itself, with no server: texts/s batching the same texts the same way.

    It takes each batch with the server's ``next_batch`` rules from a queue in arrival order, and
    computes as many batches at once as the server does (``RuntimeInfo.batches``). Each text is
    tokenised as it joins the queue, one at a time, as the server tokenises each request on arrival:
    texts in, vectors out, like any embedding job. The texts go round in order, so the offline texts
    have the same mix of lengths as the requests. The queue:

    - ``in_system=c``: the limit of a server at concurrency ``c``. ``c`` texts are in the system at
      all times, queued or computing, as with ``c`` clients that each send the next text when the
      last is answered, but with no transport, HTTP or event loop in between;
    - ``in_system=None``: a deep queue, two batches' worth of texts waiting whatever is computing:
      the runtime's throughput when there is always more work than a server at that concurrency has.
    """

    def __init__(
        self,
        hub: object,
        ref: str,
        texts: Sequence[str],
        threads: int | None,
        min_fill: float,
    ) -> None:
        self.min_fill = min_fill
        from fmstack.serve.loader import load_runtime

        _, self.runtime = load_runtime(hub, ref, threads)  # type: ignore[arg-type]
        self.texts = list(texts)

    def rate(self, size: int, max_tokens: int, seconds: float) -> float:
        """texts/s from a deep queue."""
        sample = self.run(size, max_tokens, seconds)
        return round(sample.texts / sample.seconds, 1)

    def run(self, size: int, max_tokens: int, seconds: float, in_system: int | None = None) -> OfflineSample:
        from fmstack.serve.batching import Limits, next_batch

        limits = Limits(max_tokens=max_tokens, max_size=size, max_wait_s=0, min_fill=self.min_fill)
        texts, n = self.texts, len(self.texts)
        self.runtime.forward(self.runtime.encode(texts[:size]))  # warm-up
        lock = threading.Condition()
        pending: list[_Item] = []
        arrived = done = computing = 0
        start, cpu = time.perf_counter(), time.process_time()
        stop_at = start + seconds

        def full() -> bool:
            if in_system is None:
                return len(pending) >= 2 * size
            return len(pending) + computing >= in_system

        def top_up() -> None:
            nonlocal arrived
            while not full():
                pending.append(_Item(self.runtime.encode([texts[arrived % n]])[0], arrived))
                arrived += 1

        def take() -> list[_Item]:
            nonlocal pending, computing
            with lock:
                top_up()
                while not pending:  # every text in the system is computing: wait for one to finish
                    lock.wait()
                    top_up()
                batch = next_batch(pending, limits)
                taken = set(map(id, batch))
                pending = [p for p in pending if id(p) not in taken]
                computing += len(batch)
                return batch

        def compute() -> None:
            nonlocal done, computing
            while time.perf_counter() < stop_at:
                batch = take()
                self.runtime.forward([item.ids for item in batch])
                with lock:
                    done += len(batch)
                    computing -= len(batch)
                    lock.notify()

        workers = [threading.Thread(target=compute) for _ in range(self.runtime.info.batches)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
        return OfflineSample(done, time.perf_counter() - start, time.process_time() - cpu)

    def vectors(self, count: int) -> Any:
        """(count, dimensions) embeddings of the first texts, in batches of 32."""
        import numpy as np

        chunks = [self.texts[i : min(i + 32, count)] for i in range(0, count, 32)]
        return np.concatenate([self.runtime.forward(self.runtime.encode(chunk)) for chunk in chunks])


@dataclass
class OfflineSample:
    texts: int
    seconds: float
    cpu_s: float  # of this process, all threads


@dataclass
class OfflineLimit:
    rate: float  # texts/s with the level's concurrency in the system: the goal's reference
    cpu_ms_per_text: float
    deep_rate: float  # texts/s from a deep queue, for comparison

    @classmethod
    def of(cls, samples: Sequence[OfflineSample], deep_rate: float) -> OfflineLimit:
        texts = sum(s.texts for s in samples)
        rate = round(texts / sum(s.seconds for s in samples), 1)
        return cls(rate, round(1000 * sum(s.cpu_s for s in samples) / texts, 2), deep_rate)


def sentence_transformers(folder: Path, int8: bool) -> Any:
    """sentence-transformers on the model folder, fp32 or with int8 Linear layers (``quantize_dynamic``,
    as ``bench/naive_server.py --int8``): the usual way to embed, at either precision."""
    from sentence_transformers import SentenceTransformer

    sys.path.insert(0, str(ROOT / "bench"))
    from naive_server import int8 as quantize

    model = SentenceTransformer(str(folder), device="cpu")
    return quantize(model) if int8 else model


def sentence_transformers_rate(model: Any, texts: Sequence[str], batch_size: int, seconds: float) -> float:
    """texts/s of sentence-transformers ``encode`` on the same texts."""
    model.encode(list(texts[:batch_size]), batch_size=batch_size)  # warm-up
    done, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        chunk = [texts[(done + k) % len(texts)] for k in range(4 * batch_size)]
        model.encode(chunk, batch_size=batch_size, normalize_embeddings=True)
        done += len(chunk)
    return round(done / (time.perf_counter() - start), 1)


# -- setup ----------------------------------------------------------------------------------------


def load_texts(n: int) -> tuple[list[str], str]:
    if BANKING77.is_file():
        with BANKING77.open(newline="") as f:
            texts = [row["text"] for row in csv.DictReader(f)][:n]
        return texts, f"BANKING77 test split ({len(texts)} texts)"
    rng = random.Random(0)
    subjects = ["my card", "the transfer", "a refund", "my account", "the app", "an exchange rate", "my pin"]
    verbs = [
        "is not working",
        "was declined",
        "has not arrived",
        "looks wrong",
        "needs to be changed",
        "failed",
    ]
    tails = ["", " since yesterday", " after I topped up", " what should I do?", " can you help me?"]
    texts = [f"{rng.choice(subjects).capitalize()} {rng.choice(verbs)}{rng.choice(tails)}" for _ in range(n)]
    return texts, f"generated sentences ({n}; BANKING77 not found at {BANKING77})"


@dataclass
class Variant:
    """One model that fmstack serves in this run."""

    name: str  # "fp32", "int8": the target's label in the results
    ref: str
    what: str


def prepare_models(hub: object, runtime: str, int8: bool) -> tuple[list[Variant], Path]:
    """(the versions fmstack serves, the PyTorch folder of the naive server)."""
    from fmstack.hub import Hub
    from fmstack.hub.importers import import_builtin

    assert isinstance(hub, Hub)
    base = import_builtin(hub)
    folder = hub.checkout(base.ref)
    if runtime in ("onnx", "auto"):
        try:
            variants = [_export(hub, base.ref, "fp32")]
            if int8:
                variants.append(_export(hub, base.ref, "int8"))
            return variants, folder
        except Exception as exc:
            if runtime == "onnx":
                raise
            print(f"  (no ONNX export: {type(exc).__name__}: {exc}; serving PyTorch)", flush=True)
    return [Variant("pytorch", base.ref, f"{base.ref}: PyTorch (transformers) folder")], folder


def _export(hub: object, base_ref: str, precision: str) -> Variant:
    from fmstack.compress.pipeline import compress
    from fmstack.compress.spec import CompressSpec

    output = f"bench/minilm-l6-{'onnx' if precision == 'fp32' else precision}"
    quantize = "int8" if precision == "int8" else "none"
    spec = CompressSpec(output=output, quantize=quantize, latency_runs=1)
    result = compress(hub, base_ref, spec)  # type: ignore[arg-type]
    ref = result.version.ref if result.version is not None else output
    how = "int8 weights (per-channel, dynamic activations)" if precision == "int8" else "fp32"
    return Variant(precision, ref, f"{ref}: {how} ONNX export of {base_ref} by fmstack compress")


# -- running and reporting ------------------------------------------------------------------------


def measure(
    url: str,
    ref: str,
    texts: Sequence[str],
    c: int,
    seconds: float,
    max_requests: int,
    pid: int,
    path: str = "/v1/embeddings",
) -> Sample:
    """One stretch of load at concurrency ``c``, with the server's CPU time over it."""
    process = psutil.Process(pid)
    total, loop = cpu_seconds(process)
    sample = load(run_level(url, ref, texts, c, seconds, max_requests, path))
    total_after, loop_after = cpu_seconds(process)
    sample.cpu_s, sample.loop_cpu_s = total_after - total, loop_after - loop
    return sample


def show(level: Level) -> None:
    c = level.concurrency
    print(
        f"  {level.target:<13} c={c:<3} {level.rps:>8.1f} req/s  p50 {level.p50_ms:>7.1f} ms  "
        f"p99 {level.p99_ms:>7.1f} ms  cpu {level.cpu_ms_per_request:.2f} ms/req "
        f"(event loop {level.loop_cpu_ms_per_request:.2f})  errors {level.errors}",
        flush=True,
    )


def cpu_seconds(process: psutil.Process) -> tuple[float, float]:
    """CPU seconds (user + system) of a server process: all its threads, and its main thread alone
    (the event loop, in both servers)."""
    main = next((t for t in process.threads() if t.id == process.pid), None)
    return sum(process.cpu_times()[:2]), main.user_time + main.system_time if main else 0.0


NAIVE = {"fp32": "naive", "int8": "naive int8"}  # each fmstack variant's naive server of equal precision


def report(levels: list[Level], offline: dict[str, dict[int, OfflineLimit]]) -> None:
    """The results table (markdown) and the verdict against the goals at concurrency 32."""
    by = {(lv.target, lv.concurrency): lv for lv in levels}
    print(
        "\n| concurrency | target | req/s (slices: median, range) | p50 / p99 ms | CPU ms/req (event loop) "
        "| offline texts/s | offline CPU ms/text | deep-queue offline texts/s "
        "| vs naive, same precision | vs naive fp32 | vs offline | vs deep queue |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for lv in levels:
        variant = lv.target.removeprefix("fmstack ")
        limit = offline.get(variant, {}).get(lv.concurrency)
        same = by.get((NAIVE.get(variant, ""), lv.concurrency))
        fp32 = by.get(("naive", lv.concurrency))
        vs_same = f"{lv.rps / same.rps:.1f}x" if same is not None and limit is not None else ""
        vs_fp32 = f"{lv.rps / fp32.rps:.1f}x" if fp32 is not None and limit is not None else ""
        shown = "  |" * 7
        if limit is not None:
            shown = (
                f" {limit.rate} | {limit.cpu_ms_per_text} | {limit.deep_rate} | {vs_same} | {vs_fp32} |"
                f" {lv.rps / limit.rate:.2f} | {lv.rps / limit.deep_rate:.2f} |"
            )
        slices = (
            f"{statistics.median(lv.slice_rps):.1f}, {min(lv.slice_rps)}-{max(lv.slice_rps)}"
            if lv.slice_rps
            else ""
        )
        print(
            f"| {lv.concurrency} | {lv.target} | {lv.rps} ({slices}) | {lv.p50_ms} / {lv.p99_ms} "
            f"| {lv.cpu_ms_per_request} ({lv.loop_cpu_ms_per_request}) |{shown}"
        )
    if ("naive", 32) not in by:
        return
    print()
    report_naive_ratios(by)
    for lv in levels:
        if lv.concurrency != 32 or lv.target.startswith("naive"):
            continue
        if lv.target.startswith("before "):
            now = by[(f"fmstack {lv.target.removeprefix('before ')}", 32)]
            print(
                f"{lv.target} (--baseline-src) at concurrency 32: {lv.rps} req/s, p50 {lv.p50_ms} ms, "
                f"p99/p50 {lv.p99_ms / lv.p50_ms:.2f}; this tree / baseline: {now.rps / lv.rps:.3f} req/s "
                f"(slices: {slice_ratio(now, lv)}), {now.p50_ms / lv.p50_ms:.3f} p50"
            )
            continue
        naive = by[("naive", 32)]
        limit = offline[lv.target.removeprefix("fmstack ")][32]
        print(
            f"{lv.target} at concurrency 32: {lv.rps / limit.rate:.2f} of its offline limit (goal >= 0.85; "
            f"{lv.rps / limit.deep_rate:.2f} of a deep queue's), p99/p50 {lv.p99_ms / lv.p50_ms:.2f} (goal <= 2), "
            f"errors {lv.errors}; CPU per request {naive.cpu_ms_per_request / lv.cpu_ms_per_request:.1f}x less "
            f"than naive fp32, {limit.cpu_ms_per_text / lv.cpu_ms_per_request:.2f} of offline's CPU efficiency"
        )


def report_naive_ratios(by: dict[tuple[str, int], Level]) -> None:
    """fmstack / naive req/s at concurrency 32: each precision against its own, and the mixed one."""
    pairs = [
        ("fmstack fp32", "naive", "fp32 vs fp32"),
        ("fmstack int8", "naive int8", "int8 vs int8"),
        ("fmstack int8", "naive", "int8 vs fp32 (mixed: the server's gain times quantisation's)"),
    ]
    for ours, theirs, what in pairs:
        a, b = by.get((ours, 32)), by.get((theirs, 32))
        if a is None or b is None:
            continue
        print(
            f"{ours} / {theirs} at concurrency 32, {what}: {a.rps / b.rps:.1f}x req/s summed over the "
            f"slices; per slice {slice_ratio(a, b)} (goal >= 8x); CPU per request "
            f"{b.cpu_ms_per_request / a.cpu_ms_per_request:.1f}x less"
        )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 8, 32, 64])
    parser.add_argument("--seconds", type=float, default=8.0, help="Longest run per level and target.")
    parser.add_argument(
        "--rounds", type=int, default=4, help="Slices each level's time is cut into, targets alternating."
    )
    parser.add_argument("--max-requests", type=int, default=5000, help="Most requests per level.")
    parser.add_argument("--runtime", choices=["auto", "onnx", "pytorch"], default="auto")
    parser.add_argument(
        "--int8",
        action="store_true",
        help="Also serve the int8 ONNX export (what the demo puts in production).",
    )
    parser.add_argument("--texts", type=int, default=2000)
    parser.add_argument("--max-wait-ms", type=float, default=0.0)
    parser.add_argument("--max-batch-size", type=int, default=64)
    parser.add_argument("--min-batch-fill", type=float, default=0.9)
    parser.add_argument("--no-st", action="store_true", help="Skip the sentence-transformers comparison.")
    parser.add_argument(
        "--st-rounds", type=int, default=3, help="Alternating rounds of the sentence-transformers comparison."
    )
    parser.add_argument("--threads", type=int, default=None, help="Compute threads (server and offline).")
    parser.add_argument("--out", type=Path, default=None, help="Write the results as JSON here.")
    parser.add_argument(
        "--baseline-src",
        type=Path,
        default=None,
        help="Also serve the last model with the fmstack of this source tree (e.g. a git worktree of an "
        "earlier commit), measured the same way as 'before <model>'.",
    )
    parser.add_argument(
        "--goodput",
        action="store_true",
        help="Instead of the levels: capacity, then --overload times it open-loop with a --deadline.",
    )
    parser.add_argument(
        "--logging",
        action="store_true",
        help="Instead of the levels: /v1/classify throughput with --log-predictions 1 against without, "
        "two servers of one classifier in --repeats alternating rounds at each --concurrency.",
    )
    parser.add_argument("--deadline", type=float, default=1.0, help="Goodput: each request's deadline, s.")
    parser.add_argument("--overload", type=float, default=2.0, help="Goodput: arrivals per capacity.")
    parser.add_argument("--repeats", type=int, default=3, help="Goodput: rounds, servers alternating.")
    parser.add_argument(
        "--goodput-concurrency",
        type=int,
        default=32,
        help="Goodput: closed-loop clients for capacity (their queue must stay well within --deadline).",
    )
    args = parser.parse_args()

    from fmstack.hub import Hub
    from fmstack.settings import Settings

    texts, source = load_texts(args.texts)
    with tempfile.TemporaryDirectory(prefix="fmstack-bench-serve-") as home:
        env = {**os.environ, "FMSTACK_HOME": home}
        env.pop("FMSTACK_DATABASE_URL", None)
        env.pop("FMSTACK_STORE_URL", None)
        with Hub(Settings.at(Path(home))) as hub:
            print(
                f"machine: {os.cpu_count()} cores (shared), load average {os.getloadavg()[0]:.2f}; texts: {source}"
            )
            if args.logging:
                logging_overhead(hub, args, env, texts, Path(home))
                return
            variants, folder = prepare_models(hub, args.runtime, args.int8)
            for v in variants:
                print(f"model {v.name}: {v.what}", flush=True)
            if args.goodput:
                goodput(variants[-1], args, env, texts)
                return
            runtimes = {
                v.name: Offline(hub, v.ref, texts, args.threads, args.min_batch_fill) for v in variants
            }
            embedding = compare_embeddings(runtimes, folder, texts, args) if not args.no_st else {}

        servers, ports = start_servers(variants, folder, args, env)
        offline: dict[str, dict[int, OfflineLimit]] = {v.name: {} for v in variants}
        levels: list[Level] = []
        try:
            for url, ref in ports.values():
                warm_up(url, ref, texts)
            for c in args.concurrency:
                size = min(c, args.max_batch_size)
                # Every target, offline limits included, in short alternating slices: the machine's
                # speed drifts over minutes, and a ratio of two rates measured minutes apart is off
                # by that drift. Here both sides of every ratio see the same stretch of time.
                alone = {v.name: list[OfflineSample]() for v in variants}
                served = {name: list[Sample]() for name in ports}
                for _ in range(args.rounds):
                    for v in variants:
                        slice_s = args.seconds / 2 / args.rounds
                        alone[v.name].append(runtimes[v.name].run(size, 8192, slice_s, in_system=c))
                    for name, (url, ref) in ports.items():
                        pid = servers[name].pid
                        per_round = args.max_requests // args.rounds
                        served[name].append(
                            measure(url, ref, texts, c, args.seconds / args.rounds, per_round, pid)
                        )
                for v in variants:
                    limit = OfflineLimit.of(
                        alone[v.name], runtimes[v.name].rate(size, 8192, args.seconds / 2)
                    )
                    offline[v.name][c] = limit
                    print(
                        f"  offline {v.name:<5} batch={size:<3} {limit.rate:>8.1f} texts/s with {c} in the "
                        f"system, cpu {limit.cpu_ms_per_text:.2f} ms/text; {limit.deep_rate:.1f} texts/s "
                        "from a deep queue",
                        flush=True,
                    )
                for name in ports:
                    levels.append(summarize(name, c, served[name]))
                    show(levels[-1])
        finally:
            for proc in servers.values():
                stop(proc)

    report(levels, offline)
    if args.out:
        result = {
            "texts": source,
            "models": [asdict(v) for v in variants],
            "offline": {k: {c: asdict(limit) for c, limit in v.items()} for k, v in offline.items()},
            "embedding_throughput": embedding,
            "levels": [asdict(x) for x in levels],
        }
        args.out.write_text(json.dumps(result, indent=2))


def compare_embeddings(
    runtimes: dict[str, Offline], folder: Path, texts: Sequence[str], args: argparse.Namespace
) -> dict[str, Any]:
    """texts/s of each serving runtime vs sentence-transformers ``encode`` at batch 32, at equal
    precision (fp32 vs fp32, int8 vs int8) and mixed (int8 vs fp32), in ``--st-rounds`` rounds in
    which every runtime takes its turn; and how close each variant's vectors are to fp32's (cosine)."""
    import numpy as np

    st = {"st fp32": sentence_transformers(folder, int8=False)}
    if "int8" in runtimes:
        st["st int8"] = sentence_transformers(folder, int8=True)
    seconds = args.seconds / args.st_rounds
    rounds: dict[str, list[float]] = {name: [] for name in [*st, *runtimes]}
    for _ in range(args.st_rounds):
        for name, model in st.items():
            rounds[name].append(sentence_transformers_rate(model, texts, 32, seconds))
        for name, runtime in runtimes.items():
            rounds[name].append(runtime.rate(32, 8192, seconds))
    result: dict[str, Any] = {"rounds": rounds}
    reference = runtimes["fp32"].vectors(512) if "fp32" in runtimes else None
    for name, runtime in runtimes.items():
        if reference is not None and name != "fp32":
            result[f"{name}_cosine_to_fp32"] = round(
                float(np.mean(np.sum(runtime.vectors(512) * reference, axis=1))), 4
            )
    for name, rates in rounds.items():
        print(
            f"embedding throughput, batch 32: {name} {spread(rates)} texts/s (median, range of {args.st_rounds} rounds)"
        )
    for ours, theirs, what in [
        ("fp32", "st fp32", "fp32 vs fp32"),
        ("int8", "st int8", "int8 vs int8"),
        ("int8", "st fp32", "int8 vs fp32 (mixed: the runtime's gain times quantisation's)"),
    ]:
        if ours in rounds and theirs in rounds:
            ratios = [a / b for a, b in zip(rounds[ours], rounds[theirs], strict=True)]
            result[f"{ours}/{theirs}"] = ratios
            print(
                f"  {ours} serving runtime / sentence-transformers {theirs.removeprefix('st ')}, {what}: "
                f"{statistics.median(ratios):.2f}x ({min(ratios):.2f}-{max(ratios):.2f}) (goal >= 3x)",
                flush=True,
            )
    if "int8_cosine_to_fp32" in result:
        print(f"  int8 vectors: mean cosine to fp32 {result['int8_cosine_to_fp32']}")
    return result


def spread(values: Sequence[float]) -> str:
    return f"{statistics.median(values):.1f} ({min(values):.1f}-{max(values):.1f})"


def goodput(variant: Variant, args: argparse.Namespace, env: dict[str, str], texts: Sequence[str]) -> None:
    """The goodput benchmark: one ``fmstack serve`` of ``variant``, and with ``--baseline-src`` the
    baseline's, which runs with ``--request-timeout --deadline`` (it may not read ``X-Request-Timeout``);
    this tree's keeps the default, so that its capacity is measured without a deadline's refusals."""
    servers: dict[str, subprocess.Popen[bytes]] = {}
    ports: dict[str, tuple[str, str]] = {}
    try:
        for name, src in [(f"fmstack {variant.name}", None), (f"before {variant.name}", args.baseline_src)]:
            if name.startswith("before") and src is None:
                continue
            extra = ["--request-timeout", str(args.deadline)] if src is not None else []
            servers[name], url = start_fmstack(variant.ref, args, env, src, extra)
            ports[name] = (url, variant.ref)
            warm_up(url, variant.ref, texts)
        print(
            f"goodput: deadline {args.deadline} s, {args.overload}x capacity, {args.repeats} repeats, "
            f"load average {os.getloadavg()[0]:.2f}",
            flush=True,
        )
        runs = run_goodput(ports, texts, args)
    finally:
        for proc in servers.values():
            stop(proc)
    print(f"load average after: {os.getloadavg()[0]:.2f}")
    report_goodput(runs)
    if args.out:
        args.out.write_text(json.dumps([asdict(o) for o in runs], indent=2))


def classifier(hub: object) -> str:
    """The built-in MiniLM with a 77-label classification head (random: throughput does not care),
    exported to ONNX fp32 by fmstack compress: what a served intent classifier looks like."""
    import shutil

    from transformers import AutoModelForSequenceClassification

    from fmstack.compress.pipeline import compress
    from fmstack.compress.spec import CompressSpec
    from fmstack.hub import Hub
    from fmstack.hub.importers import import_builtin

    assert isinstance(hub, Hub)
    base = hub.checkout(import_builtin(hub).ref)
    labels = [f"intent_{i}" for i in range(77)]
    model = AutoModelForSequenceClassification.from_pretrained(
        base, id2label=dict(enumerate(labels)), label2id={k: i for i, k in enumerate(labels)}
    )
    with tempfile.TemporaryDirectory() as tmp:
        model.save_pretrained(tmp)
        for name in ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "special_tokens_map.json"):
            if (base / name).is_file():
                shutil.copy(base / name, Path(tmp) / name)
        pushed = hub.push("bench/classifier", tmp, "model")
    result = compress(hub, pushed.ref, CompressSpec(output="bench/classifier-onnx", latency_runs=1))
    return result.version.ref if result.version is not None else pushed.ref


def logging_overhead(
    hub: object, args: argparse.Namespace, env: dict[str, str], texts: Sequence[str], home: Path
) -> None:
    """``--logging``: the same classifier served twice, without and with ``--log-predictions 1`` (every
    prediction written), measured in alternating rounds (the order flips each round) at each level."""
    ref = classifier(hub)
    print(f"model {ref}: MiniLM + 77-label head, ONNX fp32", flush=True)
    servers: dict[str, subprocess.Popen[bytes]] = {}
    urls: dict[str, str] = {}
    try:
        for name, extra in (
            ("plain", []),
            ("logging", ["--log-predictions", "1", "--log-dir", str(home / "log")]),
        ):
            servers[name], urls[name] = start_fmstack(ref, args, env, extra=extra)
            load(run_level(urls[name], ref, texts, 4, 2.0, 200, "/v1/classify"))  # warm up
        result: dict[str, Any] = {}
        for c in args.concurrency:
            rounds: dict[str, list[float]] = {name: [] for name in servers}
            for r in range(args.repeats):
                order = list(servers) if r % 2 == 0 else list(reversed(servers))
                for name in order:
                    pid = servers[name].pid
                    sample = measure(
                        urls[name], ref, texts, c, args.seconds, args.max_requests, pid, "/v1/classify"
                    )
                    rounds[name].append(sample.answered / sample.seconds if sample.seconds else 0.0)
            ratios = [a / b for a, b in zip(rounds["logging"], rounds["plain"], strict=True) if b]
            result[str(c)] = {"rounds": rounds, "ratios": ratios}
            print(
                f"concurrency {c}: plain {spread(rounds['plain'])} req/s, logging {spread(rounds['logging'])} "
                f"req/s; logging / plain {statistics.median(ratios):.3f}x ({min(ratios):.3f}-{max(ratios):.3f}) "
                f"over {args.repeats} rounds (goal >= 0.95x); load average {os.getloadavg()[0]:.2f}",
                flush=True,
            )
    finally:
        for proc in servers.values():
            stop(proc)
    logged = sum(1 for _ in (home / "log").rglob("*.arrow"))
    print(f"log segments written: {logged}")
    if args.out:
        args.out.write_text(json.dumps(result, indent=2))


def start_fmstack(
    ref: str,
    args: argparse.Namespace,
    env: dict[str, str],
    src: Path | None = None,
    extra: Sequence[str] = (),
) -> tuple[subprocess.Popen[bytes], str]:
    """``fmstack serve ref`` with the benchmark's batching flags; with ``src``, the fmstack of that source
    tree (its ``src`` first on the path)."""
    port = free_port()
    cmd = [FMSTACK, "serve", ref, "--port", str(port), "--log-level", "warning", "--poll-aliases-s", "0"]
    cmd += ["--max-wait-ms", str(args.max_wait_ms), "--max-batch-size", str(args.max_batch_size)]
    cmd += ["--min-batch-fill", str(args.min_batch_fill)]
    cmd += ["--threads", str(args.threads)] if args.threads else []
    cmd += list(extra)
    if src is not None:
        env = {**env, "PYTHONPATH": str(src.resolve() / "src")}
    url = f"http://127.0.0.1:{port}"
    return start(cmd, url, env), url


def start_servers(
    variants: list[Variant], folder: Path, args: argparse.Namespace, env: dict[str, str]
) -> tuple[dict[str, subprocess.Popen[bytes]], dict[str, tuple[str, str]]]:
    """One ``fmstack serve`` per variant and the naive server, all kept up (idle, they cost nothing) so
    that each level measures every target back to back: the other tenants' load drifts over minutes."""
    servers: dict[str, subprocess.Popen[bytes]] = {}
    ports: dict[str, tuple[str, str]] = {}
    for v in variants:
        servers[f"fmstack {v.name}"], url = start_fmstack(v.ref, args, env)
        ports[f"fmstack {v.name}"] = (url, v.ref)
    if args.baseline_src is not None:
        last = variants[-1]
        servers[f"before {last.name}"], url = start_fmstack(last.ref, args, env, args.baseline_src)
        ports[f"before {last.name}"] = (url, last.ref)
    int8 = any(v.name == "int8" for v in variants)
    naive: dict[str, list[str]] = {"naive": []} | ({"naive int8": ["--int8"]} if int8 else {})
    for name, flags in naive.items():
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        cmd = [sys.executable, str(ROOT / "bench" / "naive_server.py"), str(folder), "--port", str(port)]
        servers[name] = start(cmd + flags, url, env)
        ports[name] = (url, variants[0].ref)
    return servers, ports


if __name__ == "__main__":
    main()
