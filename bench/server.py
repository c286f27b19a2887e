"""Hub server transfers: pull throughput vs a static file server, and what an adapter push sends.

    .venv/bin/python bench/server.py                  # 200 MB model, 3 interleaved rounds, ~2 min
    .venv/bin/python bench/server.py --mb 50 --rounds 5

(1) Pull: a ``--mb`` MB model (one safetensors-named file of random bytes plus a config) is pushed to a
fresh hub; ``fmstack server start`` serves it and ``python -m http.server`` serves the same bytes from
a folder, both on loopback. Each round pulls the model with fmstack's client (``HubClient.pull``: every
file's sha256 verified before it is visible) and downloads the same files from the static server with
httpx in the same 1 MiB chunks, once without and once with a sha256 of what arrived (what a verified
copy costs there). Rounds alternate the targets; medians and ranges are reported with the load average.

(2) Push: an adapter folder that holds the base's files plus a 300 KB adapter file is pushed to the
server that holds the base; the bytes the client sent (blob bodies) are compared with the base's size.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from fmstack.hub import Hub
from fmstack.server.client import HubClient
from fmstack.settings import Settings


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_up(url: str) -> None:
    for _ in range(300):
        try:
            httpx.get(url, timeout=2)
            return
        except httpx.TransportError:
            time.sleep(0.2)
    raise SystemExit(f"{url} did not come up")


def make_model(folder: Path, mb: int) -> Path:
    folder.mkdir(parents=True)
    with open(folder / "model.safetensors", "wb") as out:
        for _ in range(mb):
            out.write(os.urandom(1 << 20))
    (folder / "config.json").write_text(json.dumps({"model_type": "bench"}))
    return folder


def static_download(url: str, names: list[str], dest: Path, verify: bool) -> None:
    dest.mkdir(parents=True)
    with httpx.Client(timeout=60) as http:
        for name in names:
            digest = hashlib.sha256()
            with http.stream("GET", f"{url}/{name}") as answer, open(dest / name, "wb") as out:
                for chunk in answer.iter_bytes(1 << 20):
                    out.write(chunk)
                    if verify:
                        digest.update(chunk)


def timed(fn: object, *args: object) -> float:
    start = time.perf_counter()
    fn(*args)  # type: ignore[operator]
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--mb", type=int, default=200, help="model size in MB")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="bench-server-"))
    home = work / "home"
    model = make_model(work / "model", args.mb)
    size = sum(p.stat().st_size for p in model.iterdir())
    env = {k: v for k, v in os.environ.items() if not k.startswith("FMSTACK_")} | {"FMSTACK_HOME": str(home)}
    fmstack = [sys.executable, "-m", "fmstack"]
    made = subprocess.run(
        [*fmstack, "server", "create-admin", "--name", "bench", "--json"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    token = json.loads(made.stdout)["token"]
    with Hub(Settings.at(home)) as hub:
        hub.push("bench/base", model, "model")
    port, static_port = free_port(), free_port()
    server = subprocess.Popen(
        [*fmstack, "server", "start", "--port", str(port)], env=env, stderr=subprocess.DEVNULL
    )
    static = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "http.server",
            str(static_port),
            "--bind",
            "127.0.0.1",
            "--directory",
            str(model),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url, static_url = f"http://127.0.0.1:{port}", f"http://127.0.0.1:{static_port}"
    try:
        wait_up(f"{url}/healthz")
        wait_up(static_url)
        names = sorted(p.name for p in model.iterdir())
        times: dict[str, list[float]] = {
            "fmstack pull (verified)": [],
            "http.server": [],
            "http.server + sha256": [],
        }
        for r in range(args.rounds):
            with HubClient(url, token) as client:
                times["fmstack pull (verified)"].append(timed(client.pull, "bench/base", work / f"pull-{r}"))
            times["http.server"].append(
                timed(static_download, static_url, names, work / f"static-{r}", False)
            )
            times["http.server + sha256"].append(
                timed(static_download, static_url, names, work / f"sha-{r}", True)
            )
            for folder in (f"pull-{r}", f"static-{r}", f"sha-{r}"):
                shutil.rmtree(work / folder)
        print(
            f"pull of {size / 1e6:.0f} MB over loopback, {args.rounds} rounds, load average {os.getloadavg()[0]:.1f}"
        )
        base = statistics.median(times["http.server"])
        for name, values in times.items():
            median = statistics.median(values)
            print(
                f"  {name:24} {size / median / 1e6:7.0f} MB/s  (median {median:.2f} s, range "
                f"{min(values):.2f}-{max(values):.2f} s)  {base / median:.2f}x http.server"
            )

        adapter = work / "adapter"
        shutil.copytree(model, adapter)
        (adapter / "adapter_model.safetensors").write_bytes(os.urandom(300_000))
        with HubClient(url, token) as client:
            client.push("bench/adapter", adapter, "adapter")
            sent = client.bytes_sent
        print(
            f"adapter push onto a held base: {sent:,} bytes sent for a {size:,}-byte base ({100 * sent / size:.2f}%)"
        )
    finally:
        for process in (server, static):
            process.terminate()
            process.wait(timeout=30)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
