"""Serving throughput and latency: ``fmstack serve`` vs a naive server vs the offline limit.

    .venv/bin/python bench/serve.py                      # concurrency 1 8 32 64, ~8 s per level
    .venv/bin/python bench/serve.py --seconds 5 --concurrency 32

For each concurrency level a bounded async load generator (loopback only; at most ``--seconds`` and
``--max-requests`` per level) sends one text per ``POST /v1/embeddings`` request to
  (a) ``fmstack serve`` (the built-in MiniLM, as an fp32 ONNX export from ``fmstack compress`` when that
      works here, else the PyTorch folder),
  (b) ``bench/naive_server.py`` (FastAPI + transformers, one forward per request),
and (c) the offline limit runs the same runtime over the same texts in batches of the same size,
with no server: the best a server could do with that runtime on this machine.

Texts: BANKING77's test split when ../shared/datasets/banking77 exists, else generated sentences.
Goals at concurrency 32: fmstack >= 8x naive requests/s, >= 0.85 of offline, p99 <= 2x p50.
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
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import httpx
import psutil

ROOT = Path(__file__).resolve().parent.parent
BANKING77 = ROOT.parent / "shared" / "datasets" / "banking77" / "test.csv"
FMSTACK = str(Path(sys.executable).parent / "fmstack")


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


async def run_level(
    url: str,
    model: str,
    texts: Sequence[str],
    concurrency: int,
    seconds: float,
    max_requests: int,
    target: str,
) -> Level:
    parsed = httpx.URL(url)
    latencies: list[float] = []
    errors = 0
    issued = 0
    stop_at = time.perf_counter() + seconds
    bodies = [json.dumps({"model": model, "input": t}).encode() for t in texts]

    async def client(index: int) -> None:
        nonlocal issued, errors
        conn = Connection(parsed.host, parsed.port or 80)
        try:
            while issued < max_requests and time.perf_counter() < stop_at:
                body = bodies[(issued + index * 7919) % len(bodies)]
                issued += 1
                start = time.perf_counter()
                status = await conn.post("/v1/embeddings", body)
                latencies.append(time.perf_counter() - start)
                errors += status != 200
        finally:
            conn.close()

    start = time.perf_counter()
    await asyncio.gather(*(client(i) for i in range(concurrency)))
    elapsed = time.perf_counter() - start
    ordered = sorted(latencies)
    return Level(
        target=target,
        concurrency=concurrency,
        requests=len(ordered),
        errors=errors,
        seconds=round(elapsed, 2),
        rps=round(len(ordered) / elapsed, 1),
        p50_ms=round(1000 * statistics.median(ordered), 2),
        p99_ms=round(1000 * ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))], 2),
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


def warm_up(url: str, model: str, texts: Sequence[str], name: str) -> None:
    asyncio.run(run_level(url, model, texts, 4, 2.0, 200, name))  # first calls allocate buffers


@dataclass
class _Item:
    length: int
    arrival: float
    index: int
    deadline: float = float("inf")
    dropped: bool = False


class Offline:
    """The serving runtime itself, with no server: texts/s batching the same texts the same way."""

    def __init__(
        self, hub: object, ref: str, texts: Sequence[str], threads: int | None, min_fill: float
    ) -> None:
        self.min_fill = min_fill
        from fmstack.serve.loader import load_runtime

        _, self.runtime = load_runtime(hub, ref, threads)  # type: ignore[arg-type]
        self.ids = self.runtime.encode(list(texts))
        self.cpu_ms_per_text = 0.0  # of the last run: CPU time of this process per text

    def run(self, size: int, max_tokens: int, seconds: float) -> float:
        from fmstack.serve.batching import Limits, next_batch

        limits = Limits(max_tokens=max_tokens, max_size=size, max_wait_s=0, min_fill=self.min_fill)
        ids, n = self.ids, len(self.ids)
        self.runtime.forward(ids[:size])  # warm-up
        done, start, cpu = 0, time.perf_counter(), time.process_time()
        while time.perf_counter() - start < seconds:
            # The next 2 batches' worth of texts, as a server's queue would hold them under load.
            window = [_Item(len(ids[(done + k) % n]), k, (done + k) % n) for k in range(2 * size)]
            batch = next_batch(window, limits)
            self.runtime.forward([ids[item.index] for item in batch])
            done += len(batch)
        self.cpu_ms_per_text = round(1000 * (time.process_time() - cpu) / done, 2)
        return round(done / (time.perf_counter() - start), 1)


def sentence_transformers_rate(folder: Path, texts: Sequence[str], batch_size: int, seconds: float) -> float:
    """texts/s of sentence-transformers ``encode`` (PyTorch) on the same texts: the usual way to embed."""
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


def prepare_model(hub: object, runtime: str) -> tuple[str, str, Path]:
    """(ref to serve, what it is, PyTorch folder for the naive server)."""
    from fmstack.hub import Hub
    from fmstack.hub.importers import import_builtin

    assert isinstance(hub, Hub)
    base = import_builtin(hub)
    folder = hub.checkout(base.ref)
    if runtime in ("onnx", "auto"):
        try:
            from fmstack.compress.pipeline import compress
            from fmstack.compress.spec import CompressSpec

            result = compress(hub, base.ref, CompressSpec(output="bench/minilm-l6-onnx", latency_runs=1))
            version = getattr(result, "version", None)
            ref = version.ref if version is not None else "bench/minilm-l6-onnx"
            return ref, f"{ref}: fp32 ONNX export of {base.ref} by fmstack compress (graph-optimised)", folder
        except Exception as exc:
            if runtime == "onnx":
                raise
            print(f"  (no ONNX export: {type(exc).__name__}: {exc}; serving PyTorch)", flush=True)
    return base.ref, f"{base.ref}: PyTorch (transformers) folder", folder


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 8, 32, 64])
    parser.add_argument("--seconds", type=float, default=8.0, help="Longest run per level.")
    parser.add_argument("--max-requests", type=int, default=5000, help="Most requests per level.")
    parser.add_argument("--runtime", choices=["auto", "onnx", "pytorch"], default="auto")
    parser.add_argument("--texts", type=int, default=2000)
    parser.add_argument("--max-wait-ms", type=float, default=5.0)
    parser.add_argument("--max-batch-size", type=int, default=64)
    parser.add_argument("--min-batch-fill", type=float, default=0.75)
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
            print(f"machine: {os.cpu_count()} cores (shared); texts: {source}", flush=True)
            ref, what, folder = prepare_model(hub, args.runtime)
            print(f"model: {what}", flush=True)
            offline_runtime = Offline(hub, ref, texts, args.threads, args.min_batch_fill)
            st_rate = runtime_rate = 0.0
            if not args.no_st:
                st_rate = sentence_transformers_rate(folder, texts, 32, args.seconds)
                runtime_rate = offline_runtime.run(32, 8192, args.seconds)
                print(
                    f"embedding throughput, batch 32: serving runtime {runtime_rate} texts/s, "
                    f"sentence-transformers encode {st_rate} texts/s: {runtime_rate / st_rate:.2f}x (goal >= 3x)",
                    flush=True,
                )

        fm_port, naive_port = free_port(), free_port()
        fm_url, naive_url = f"http://127.0.0.1:{fm_port}", f"http://127.0.0.1:{naive_port}"
        fm_cmd = [FMSTACK, "serve", ref, "--port", str(fm_port), "--log-level", "warning"]
        fm_cmd += ["--max-wait-ms", str(args.max_wait_ms), "--poll-aliases-s", "0"]
        fm_cmd += ["--max-batch-size", str(args.max_batch_size), "--min-batch-fill", str(args.min_batch_fill)]
        fm_cmd += ["--threads", str(args.threads)] if args.threads else []
        naive_cmd = [
            sys.executable,
            str(ROOT / "bench" / "naive_server.py"),
            str(folder),
            "--port",
            str(naive_port),
        ]
        # Both servers stay up (idle, they cost nothing) so that each level measures offline, fmstack and
        # naive back to back: the other tenants' load drifts over minutes; this keeps a level comparable.
        servers = [start(fm_cmd, fm_url, env), start(naive_cmd, naive_url, env)]
        cpu_of = {"fmstack": psutil.Process(servers[0].pid), "naive": psutil.Process(servers[1].pid)}
        offline_cpu: dict[int, float] = {}
        offline: dict[int, float] = {}
        fmstack_levels: list[Level] = []
        naive_levels: list[Level] = []
        try:
            warm_up(fm_url, ref, texts, "fmstack")
            warm_up(naive_url, ref, texts, "naive")
            for c in args.concurrency:
                size = min(c, args.max_batch_size)
                offline[c] = offline_runtime.run(size, 8192, args.seconds / 2)
                offline_cpu[c] = offline_runtime.cpu_ms_per_text
                print(
                    f"  offline  batch={size:<3} {offline[c]:>8.1f} texts/s  cpu {offline_cpu[c]:.2f} ms/text",
                    flush=True,
                )
                targets = (("fmstack", fm_url, fmstack_levels), ("naive", naive_url, naive_levels))
                for name, url, levels in targets:
                    before = sum(cpu_of[name].cpu_times()[:2])
                    level = asyncio.run(run_level(url, ref, texts, c, args.seconds, args.max_requests, name))
                    used = sum(cpu_of[name].cpu_times()[:2]) - before
                    level.cpu_ms_per_request = round(1000 * used / max(level.requests, 1), 2)
                    print(
                        f"  {name:<8} c={c:<3} {level.rps:>8.1f} req/s  p50 {level.p50_ms:>7.1f} ms  "
                        f"p99 {level.p99_ms:>7.1f} ms  cpu {level.cpu_ms_per_request:.2f} ms/req  errors {level.errors}",
                        flush=True,
                    )
                    levels.append(level)
        finally:
            for proc in servers:
                stop(proc)

    print()
    print(
        "| concurrency | fmstack req/s | p50 / p99 ms | CPU ms/req | naive req/s | p50 / p99 ms | CPU ms/req "
        "| offline texts/s | CPU ms/text | fmstack / naive | fmstack / offline |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for fm, nv in zip(fmstack_levels, naive_levels, strict=True):
        c = fm.concurrency
        print(
            f"| {c} | {fm.rps} | {fm.p50_ms} / {fm.p99_ms} | {fm.cpu_ms_per_request} | {nv.rps} | "
            f"{nv.p50_ms} / {nv.p99_ms} | {nv.cpu_ms_per_request} | {offline[c]} | {offline_cpu[c]} | "
            f"{fm.rps / nv.rps:.1f}x | {fm.rps / offline[c]:.2f} |"
        )
    at32 = next((fm for fm in fmstack_levels if fm.concurrency == 32), None)
    if at32 is not None:
        nv32 = next(nv for nv in naive_levels if nv.concurrency == 32)
        print(
            f"\nat concurrency 32: {at32.rps / nv32.rps:.1f}x naive req/s (goal >= 8x), "
            f"{at32.rps / offline[32]:.2f} of offline batch 32 (goal >= 0.85), "
            f"p99/p50 {at32.p99_ms / at32.p50_ms:.2f} (goal <= 2), errors {at32.errors}; "
            f"CPU per request: {nv32.cpu_ms_per_request / max(at32.cpu_ms_per_request, 1e-9):.1f}x less than naive, "
            f"{offline_cpu[32] / max(at32.cpu_ms_per_request, 1e-9):.2f} of offline's CPU efficiency"
        )
    if args.out:
        result = {
            "texts": source,
            "model": what,
            "offline_texts_per_s": offline,
            "offline_cpu_ms_per_text": offline_cpu,
            "runtime_vs_sentence_transformers": {"runtime": runtime_rate, "sentence_transformers": st_rate},
            "levels": [asdict(x) for x in fmstack_levels + naive_levels],
        }
        args.out.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
