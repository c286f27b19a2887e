"""What one huge request costs a running ``fmstack serve``: /healthz latency and the process's memory
while texts of several MB arrive, for this source tree and, with ``--baseline-src``, another one.

    .venv/bin/python bench/request_limits.py                                   # this tree only
    git archive 82b5bb2 src | tar -x -C /tmp/before                            # the tree before the fix
    .venv/bin/python bench/request_limits.py --baseline-src /tmp/before/src    # before, then after

Each server serves the built-in MiniLM (PyTorch, 1 compute thread) from a fresh hub. After three
small warm-up requests it reads the server's RSS, then posts ``--concurrent`` requests at once to
``/v1/embeddings``, each one text of ``--mb`` MB (under the 8 MB body limit), and meanwhile asks
``/healthz`` every 50 ms. It reports the status of each big request, the time until the last
answered, the slowest ``/healthz`` (the event loop's stall), the peak RSS and the RSS two seconds
after the last answer (memory kept). Then the same with ``"truncate": true`` (the tree after the fix
cuts the text to ``--max-input-chars`` and answers 200; the tree before has no such field and
refuses or tokenises the whole text like the first run).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import psutil

REPO_SRC = Path(__file__).resolve().parents[1] / "src"


@dataclass
class Result:
    tree: str
    truncate: bool
    statuses: list[int]
    answered_s: float
    healthz_max_s: float
    rss_before_mb: float
    rss_peak_mb: float
    rss_after_mb: float


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _prepare_hub(home: Path) -> str:
    os.environ["FMSTACK_HOME"] = str(home)
    from fmstack.hub import Hub
    from fmstack.hub.importers import import_builtin
    from fmstack.settings import Settings

    with Hub(Settings.from_env()) as hub:
        return import_builtin(hub).ref


def _start(src: Path, home: Path, ref: str) -> tuple[subprocess.Popen[bytes], str]:
    port = _free_port()
    env = {**os.environ, "PYTHONPATH": str(src), "FMSTACK_HOME": str(home)}
    code = "import sys; from fmstack.cli.main import main; sys.exit(main(sys.argv[1:]))"
    cmd = [sys.executable, "-c", code, "serve", ref, "--port", str(port), "--threads", "1"]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/readyz").status_code == 200:
                return proc, url
        except httpx.TransportError:
            time.sleep(0.2)
    proc.kill()
    raise SystemExit(f"the server from {src} was not ready in 180 s")


class _PeakRSS:
    """Samples a process's RSS every 20 ms in a thread; ``peak`` in bytes."""

    def __init__(self, pid: int) -> None:
        self.process = psutil.Process(pid)
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(0.02):
            self.peak = max(self.peak, self.process.memory_info().rss)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


async def _storm(url: str, body: bytes, concurrent: int) -> tuple[list[int], float, float]:
    """Statuses of ``concurrent`` posts of ``body``, seconds until the last answered, slowest /healthz."""
    headers = {"content-type": "application/json"}
    async with httpx.AsyncClient(base_url=url, timeout=600) as client:
        start = time.perf_counter()
        posts = [
            asyncio.create_task(client.post("/v1/embeddings", content=body, headers=headers))
            for _ in range(concurrent)
        ]
        slowest = 0.0
        while not all(p.done() for p in posts):
            asked = time.perf_counter()
            await client.get("/healthz")
            slowest = max(slowest, time.perf_counter() - asked)
            await asyncio.sleep(0.05)
        statuses = [(await p).status_code for p in posts]
        return statuses, time.perf_counter() - start, slowest


def measure(tree: str, src: Path, home: Path, ref: str, mb: float, concurrent: int) -> list[Result]:
    results = []
    for truncate in (False, True):
        proc, url = _start(src, home, ref)
        try:
            with httpx.Client(base_url=url) as client:
                for _ in range(3):
                    client.post("/v1/embeddings", json={"model": ref, "input": "warm up"})
            process = psutil.Process(proc.pid)
            before = process.memory_info().rss
            text = "where is my refund " * int(mb * 1e6 / 19)
            payload: dict[str, object] = {"model": ref, "input": text}
            if truncate:
                payload["truncate"] = True
            peak = _PeakRSS(proc.pid)
            statuses, answered, slowest = asyncio.run(_storm(url, json.dumps(payload).encode(), concurrent))
            time.sleep(2)
            peak.stop()
            after = process.memory_info().rss
            results.append(
                Result(
                    tree,
                    truncate,
                    statuses,
                    answered,
                    slowest,
                    before / 2**20,
                    peak.peak / 2**20,
                    after / 2**20,
                )
            )
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(60)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--baseline-src", type=Path, help="the src folder of another fmstack tree")
    parser.add_argument("--mb", type=float, default=7.8, help="size of the text in MB (default 7.8)")
    parser.add_argument("--concurrent", type=int, default=1, help="big requests at once (default 1)")
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="fmstack-bench-limits-"))
    ref = _prepare_hub(home)
    trees = [("before", args.baseline_src)] if args.baseline_src else []
    trees.append(("after", REPO_SRC))
    print(f"load average {os.getloadavg()[0]:.1f}; {args.concurrent} x {args.mb} MB text to /v1/embeddings")
    print("tree    truncate  statuses        answered s  /healthz max s  RSS before  peak  2 s after (MiB)")
    for name, src in trees:
        for r in measure(name, src, home, ref, args.mb, args.concurrent):
            print(
                f"{r.tree:7} {r.truncate!s:9} {r.statuses!s:15} {r.answered_s:10.2f}  "
                f"{r.healthz_max_s:14.2f}  {r.rss_before_mb:10.0f}  {r.rss_peak_mb:4.0f}  {r.rss_after_mb:9.0f}"
            )
    print(f"load average {os.getloadavg()[0]:.1f} at the end")


if __name__ == "__main__":
    main()
