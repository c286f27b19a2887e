"""Serving throughput: one `fmstack serve` process vs `--replicas 2` (two processes behind HAProxy), on
the built-in all-MiniLM-L6-v2 (`/v1/embeddings`, one short text per request, CONCURRENCY clients).
Configurations, interleaved per repeat: the baseline a single server with one compute thread, a
single server with two threads (the same cores as two replicas), and two replicas of one thread each.

    .venv/bin/python bench/scale_serve.py [--seconds 20] [--repeats 2] [--concurrency 16]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

import httpx

CONFIGS = {"1 process, 1 thread": (1, 1), "1 process, 2 threads": (1, 2), "2 replicas, 1 thread each": (2, 1)}
TEXTS = ["where is my refund", "i lost my card yesterday", "how do i change my pin", "the app keeps crashing"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def load(url: str, seconds: float, concurrency: int) -> tuple[int, list[float]]:
    done, latencies = 0, []
    deadline = time.perf_counter() + seconds

    async def client(i: int) -> None:
        nonlocal done
        async with httpx.AsyncClient(timeout=60) as http:
            while time.perf_counter() < deadline:
                start = time.perf_counter()
                body = {"model": "fmstack/minilm-l6", "input": TEXTS[(i + done) % len(TEXTS)]}
                answer = await http.post(f"{url}/v1/embeddings", json=body)
                answer.raise_for_status()
                latencies.append(time.perf_counter() - start)
                done += 1

    await asyncio.gather(*(client(i) for i in range(concurrency)))
    return done, latencies


def run(
    env: dict[str, str], replicas: int, threads: int, seconds: float, concurrency: int
) -> tuple[float, float]:
    port = free_port()
    cmd = [sys.executable, "-m", "fmstack", "serve", "fmstack/minilm-l6", "--port", str(port)]
    cmd += ["--threads", str(threads), "--replicas", str(replicas), "--log-level", "warning"]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 300
        while True:
            try:
                if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the server did not start ({cmd})")
            time.sleep(0.5)
        asyncio.run(load(url, 3, concurrency))  # warm-up
        done, latencies = asyncio.run(load(url, seconds, concurrency))
        return done / seconds, statistics.median(latencies) * 1000
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=120)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-scale-serve-") as home:
        env = {k: v for k, v in os.environ.items() if not k.startswith("FMSTACK_")}
        env["FMSTACK_HOME"] = home
        subprocess.run(
            [sys.executable, "-m", "fmstack", "hub", "import-builtin"],
            env=env,
            check=True,
            capture_output=True,
        )
        results: dict[str, list[tuple[float, float]]] = {name: [] for name in CONFIGS}
        for r in range(args.repeats):
            for name, (replicas, threads) in CONFIGS.items():
                rps, p50 = run(env, replicas, threads, args.seconds, args.concurrency)
                results[name].append((rps, p50))
                print(f"repeat {r} {name}: {rps:.1f} req/s, p50 {p50:.0f} ms", flush=True)
    base = statistics.median(r for r, _ in results["1 process, 1 thread"])
    for name, runs in results.items():
        rps = [r for r, _ in runs]
        print(
            f"{name}: median {statistics.median(rps):.1f} req/s (range {min(rps):.1f}-{max(rps):.1f}), "
            f"p50 latency {statistics.median(p for _, p in runs):.0f} ms, {statistics.median(rps) / base:.2f}x the baseline"
        )


if __name__ == "__main__":
    main()
