"""100 concurrent ``hf_hub_download`` calls of a small file from a hub server, as users' tools make them.

    .venv/bin/python bench/server_hf.py                 # --clients 100 --size 4096 --rounds 3; ~1 min

Starts a real server (``fmstack server start``, one uvicorn worker, SQLite + local blobs) on a fresh
FMSTACK_HOME holding one public model with a small file, then in a separate client process (the way a
user runs ``huggingface_hub``, with ``HF_ENDPOINT`` pointing at the server) starts ``--clients`` threads
at once, each calling ``hf_hub_download`` with its own empty cache (so every call makes the HEAD and
the GET a first download makes). Reports errors, p50 / p99 / max latency per call and calls per second,
for each of ``--rounds`` rounds.

Baseline in the same run: the same number of concurrent plain GETs (httpx, no Hugging Face client) of
the same bytes from ``python -m http.server``, and from the server's ``/resolve`` URL, so the cost of
the client library and of the server's checks (token, access, version lookup, hashing) can be told
apart. Prints the load average, since the machine is shared.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from fmstack.hub import Hub
from fmstack.server.visibility import set_visibility
from fmstack.settings import Settings

REPO = "bench/small"
CLIENT = r"""
import json, statistics, sys, tempfile, threading, time
from concurrent.futures import ThreadPoolExecutor
mode, url, clients = sys.argv[1], sys.argv[2], int(sys.argv[3])
if mode == "hf":
    from huggingface_hub import hf_hub_download
    def one(i):
        with tempfile.TemporaryDirectory() as cache:
            path = hf_hub_download("bench/small", "weights.bin", cache_dir=cache)
            return len(open(path, "rb").read())
else:
    import httpx
    http = httpx.Client(limits=httpx.Limits(max_connections=clients), timeout=120)
    def one(i):
        answer = http.get(url)
        answer.raise_for_status()
        return len(answer.content)
barrier = threading.Barrier(clients)
def timed(i):
    barrier.wait()  # every call starts at once
    start = time.perf_counter()
    try:
        size = one(i)
        return time.perf_counter() - start, size, None
    except Exception as exc:
        return time.perf_counter() - start, 0, type(exc).__name__ + ": " + str(exc)[:200]
start = time.perf_counter()
with ThreadPoolExecutor(clients) as pool:
    results = list(pool.map(timed, range(clients)))
wall = time.perf_counter() - start
print("RESULT", json.dumps({"wall_s": wall, "results": results}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=100, help="concurrent downloads per round")
    parser.add_argument("--size", type=int, default=4096, help="bytes of the file downloaded")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        payload = os.urandom(args.size)
        (root / "model").mkdir()
        (root / "model" / "weights.bin").write_bytes(payload)
        home = root / "home"
        with Hub(Settings.at(home)) as hub:
            hub.push(REPO, root / "model", "model")
            set_visibility(hub, REPO, "public")
        server, static = _start_server(home, root), _start_static(root / "model")
        try:
            print(f"load average at start: {_load()}")
            for n in range(args.rounds):
                _report(
                    f"round {n + 1} hf_hub_download, fmstack server", _run("hf", server[1], args), args.size
                )
                resolve = f"{server[1]}/{REPO}/resolve/main/weights.bin"
                _report(f"round {n + 1} plain GET, fmstack /resolve", _run("get", resolve, args), args.size)
                _report(
                    f"round {n + 1} plain GET, python -m http.server", _run("get", static[1], args), args.size
                )
            print(f"load average at end: {_load()}")
        finally:
            for process, _ in (server, static):
                process.send_signal(signal.SIGTERM)
                process.wait(timeout=30)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _env(home: Path | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FMSTACK_", "HF_"))}
    if home is not None:
        env["FMSTACK_HOME"] = str(home)
    return env


def _start_server(home: Path, root: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = _free_port()
    log = open(root / "server.log", "wb")  # noqa: SIM115 - lives as long as the server
    process = subprocess.Popen(
        [sys.executable, "-m", "fmstack", "server", "start", "--port", str(port)],
        env=_env(home),
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    _wait(f"{url}/healthz", process)
    return process, url


def _start_static(folder: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = _free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1", "--directory", str(folder)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}/weights.bin"
    _wait(url, process)
    return process, url


def _wait(url: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"{url}: the server exited {process.returncode}")
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"{url} did not answer in 120 s")


def _run(mode: str, url: str, args: argparse.Namespace) -> dict[str, object]:
    env = _env() | {"HF_ENDPOINT": url, "HF_HUB_DISABLE_TELEMETRY": "1", "HF_HUB_DISABLE_PROGRESS_BARS": "1"}
    done = subprocess.run(
        [sys.executable, "-c", CLIENT, mode, url, str(args.clients)],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"the client failed: {done.stderr[-3000:]}")
    result: dict[str, object] = json.loads(done.stdout.rpartition("RESULT ")[2])
    return result


def _report(label: str, run: dict[str, object], size: int) -> None:
    results = run["results"]
    assert isinstance(results, list)
    times = sorted(r[0] for r in results)
    errors = [r[2] for r in results if r[2] is not None or r[1] != size]
    wall = float(run["wall_s"])  # type: ignore[arg-type]

    def pct(q: float) -> float:  # nearest rank: p99 of 100 calls is the 99th fastest
        return times[max(0, math.ceil(q * len(times)) - 1)] * 1000

    print(
        f"{label:48s} calls {len(times):4d}  errors {len(errors):3d}  p50 {pct(0.50):7.1f} ms  "
        f"p99 {pct(0.99):7.1f} ms  max {times[-1] * 1000:7.1f} ms  {len(times) / wall:6.1f} calls/s"
    )
    for error in errors[:3]:
        print(f"    error: {error}")


def _load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


if __name__ == "__main__":
    main()
