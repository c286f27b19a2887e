"""Serving throughput and latency: ``fmstack serve`` vs a naive server vs the offline limit.

    .venv/bin/python bench/serve.py --int8                # fp32 and int8, concurrency 1 8 32 64, ~6 min
    .venv/bin/python bench/serve.py --seconds 5 --concurrency 32 --no-st

For each concurrency level a bounded async load generator (loopback only; at most ``--seconds`` and
``--max-requests`` per level) sends one text per ``POST /v1/embeddings`` request to
  (a) ``fmstack serve`` on the built-in MiniLM as an fp32 ONNX export from ``fmstack compress`` (the
      PyTorch folder when the export fails here), and with ``--int8`` a second ``fmstack serve`` on its
      int8 export (``fmstack compress --quantize int8``, what the demo puts in production),
  (b) ``bench/naive_server.py`` (FastAPI + transformers, fp32 PyTorch, one forward per request): the
      same baseline for both, so the int8 ratio mixes the server's gain with quantisation's,
and (c) the offline limit of each served version: the same runtime over the same texts, batched by the
same rules at the same batch size, with as many texts in the system as the level's concurrency and no
server: the best a server could do with that runtime at that load. For comparison it also reports the
runtime fed from a deep queue (more texts waiting than ``c`` clients can send).

Each level is cut into ``--rounds`` slices in which every target takes its turn (offline limits for
half as long as servers), and each target's slices are summed: these shared machines drift in speed
over minutes, and both sides of a ratio then see the same stretches of time.

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
from dataclasses import asdict, dataclass
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

    async def post(self, path: str, body: bytes) -> int:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        assert self.reader is not None
        head = (
            f"POST {path} HTTP/1.1\r\nHost: {self.host}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        )
        self.writer.write(head.encode() + body)
        status = int((await self.reader.readline()).split()[1])
        length = 0
        while (line := await self.reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
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
                status = await conn.post("/v1/embeddings", body)
                answered_at.append(now := time.perf_counter())
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


def sentence_transformers_rate(folder: Path, texts: Sequence[str], batch_size: int, seconds: float) -> float:
    """texts/s of sentence-transformers ``encode`` (PyTorch fp32) on the same texts: the usual way to embed."""
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(folder), device="cpu")
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
    url: str, ref: str, texts: Sequence[str], c: int, seconds: float, max_requests: int, pid: int
) -> Sample:
    """One stretch of load at concurrency ``c``, with the server's CPU time over it."""
    process = psutil.Process(pid)
    total, loop = cpu_seconds(process)
    sample = load(run_level(url, ref, texts, c, seconds, max_requests))
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


def report(levels: list[Level], offline: dict[str, dict[int, OfflineLimit]]) -> None:
    """The results table (markdown) and the verdict against the goals at concurrency 32."""
    naive = {lv.concurrency: lv for lv in levels if lv.target == "naive"}
    print(
        "\n| concurrency | target | req/s | p50 / p99 ms | CPU ms/req (event loop) | offline texts/s "
        "| offline CPU ms/text | deep-queue offline texts/s "
        "| vs naive req/s | vs offline | vs deep queue |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for lv in levels:
        limit = offline.get(lv.target.removeprefix("fmstack "), {}).get(lv.concurrency)
        vs_naive = f"{lv.rps / naive[lv.concurrency].rps:.1f}x" if lv.target != "naive" else ""
        shown = "  |" * 6
        if limit is not None:
            shown = (
                f" {limit.rate} | {limit.cpu_ms_per_text} | {limit.deep_rate} |"
                f" {vs_naive} | {lv.rps / limit.rate:.2f} | {lv.rps / limit.deep_rate:.2f} |"
            )
        print(
            f"| {lv.concurrency} | {lv.target} | {lv.rps} | {lv.p50_ms} / {lv.p99_ms} "
            f"| {lv.cpu_ms_per_request} ({lv.loop_cpu_ms_per_request}) |{shown}"
        )
    if 32 not in naive:
        return
    print()
    for lv in levels:
        if lv.concurrency != 32 or lv.target == "naive":
            continue
        limit = offline[lv.target.removeprefix("fmstack ")][32]
        print(
            f"{lv.target} at concurrency 32: {lv.rps / naive[32].rps:.1f}x naive req/s (goal >= 8x), "
            f"{lv.rps / limit.rate:.2f} of its offline limit (goal >= 0.85; {lv.rps / limit.deep_rate:.2f} "
            f"of a deep queue's), p99/p50 {lv.p99_ms / lv.p50_ms:.2f} (goal <= 2), errors {lv.errors}; "
            f"CPU per request {naive[32].cpu_ms_per_request / lv.cpu_ms_per_request:.1f}x less than naive, "
            f"{limit.cpu_ms_per_text / lv.cpu_ms_per_request:.2f} of offline's CPU efficiency"
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
    parser.add_argument("--threads", type=int, default=None, help="Compute threads (server and offline).")
    parser.add_argument("--out", type=Path, default=None, help="Write the results as JSON here.")
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
            variants, folder = prepare_models(hub, args.runtime, args.int8)
            for v in variants:
                print(f"model {v.name}: {v.what}", flush=True)
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
) -> dict[str, float]:
    """texts/s of each serving runtime vs sentence-transformers ``encode`` (fp32 PyTorch) at batch 32,
    and how close each variant's vectors are to fp32's (cosine)."""
    import numpy as np

    rates = {"sentence-transformers": sentence_transformers_rate(folder, texts, 32, args.seconds)}
    reference = runtimes["fp32"].vectors(512) if "fp32" in runtimes else None
    for name, runtime in runtimes.items():
        rates[name] = runtime.rate(32, 8192, args.seconds)
        similar = ""
        if reference is not None and name != "fp32":
            cosine = float(np.mean(np.sum(runtime.vectors(512) * reference, axis=1)))
            rates[f"{name}_cosine_to_fp32"] = round(cosine, 4)
            similar = f"; mean cosine to fp32 vectors {cosine:.4f}"
        ratio = rates[name] / rates["sentence-transformers"]
        print(
            f"embedding throughput, batch 32: {name} serving runtime {rates[name]} texts/s, "
            f"sentence-transformers encode (fp32 PyTorch) {rates['sentence-transformers']} texts/s: "
            f"{ratio:.2f}x (goal >= 3x){similar}",
            flush=True,
        )
    return rates


def start_servers(
    variants: list[Variant], folder: Path, args: argparse.Namespace, env: dict[str, str]
) -> tuple[dict[str, subprocess.Popen[bytes]], dict[str, tuple[str, str]]]:
    """One ``fmstack serve`` per variant and the naive server, all kept up (idle, they cost nothing) so
    that each level measures every target back to back: the other tenants' load drifts over minutes."""
    servers: dict[str, subprocess.Popen[bytes]] = {}
    ports: dict[str, tuple[str, str]] = {}
    for v in variants:
        port = free_port()
        cmd = [
            FMSTACK,
            "serve",
            v.ref,
            "--port",
            str(port),
            "--log-level",
            "warning",
            "--poll-aliases-s",
            "0",
        ]
        cmd += ["--max-wait-ms", str(args.max_wait_ms), "--max-batch-size", str(args.max_batch_size)]
        cmd += ["--min-batch-fill", str(args.min_batch_fill)]
        cmd += ["--threads", str(args.threads)] if args.threads else []
        url = f"http://127.0.0.1:{port}"
        servers[f"fmstack {v.name}"] = start(cmd, url, env)
        ports[f"fmstack {v.name}"] = (url, v.ref)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    naive_cmd = [sys.executable, str(ROOT / "bench" / "naive_server.py"), str(folder), "--port", str(port)]
    servers["naive"] = start(naive_cmd, url, env)
    ports["naive"] = (url, variants[0].ref)
    return servers, ports


if __name__ == "__main__":
    main()
