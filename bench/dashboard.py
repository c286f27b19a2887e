"""Dashboard page latency with 1,000 versions and 200 runs in the hub (goal: p95 <= 300 ms per page).

    .venv/bin/python bench/dashboard.py                     # 1,000 versions, 200 runs, 40 rounds
    .venv/bin/python bench/dashboard.py --versions 200 --runs 40 --rounds 10   # a quick look

The hub is seeded directly through the hub API (``Hub.push``, ``hub.runs``): one dataset repo of 5
ingested versions (2,000 rows each, with rejected rows), and model repos whose versions are produced
by 200 training runs (each consuming a dataset version, logging 3 metric curves of 200 points and 2
evaluations); every fifth model version is compressed into a downstream repo, so lineage graphs have
three levels. ``fmstack server start`` serves it in its own process on loopback; a logged-in client
(a session cookie from the login form) fetches each page in round-robin order, ``--rounds`` times
after two warm-up rounds, and the JSON API's answer for the same data is timed in the same rounds as
the baseline (what the page costs over the data it shows). Reported: p50 and p95 per page, the
page/API ratio of medians, and the load average.
"""

from __future__ import annotations

import argparse
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from fmstack.data.ingest import IngestSpec, ingest
from fmstack.server.app import open_hub
from fmstack.server.settings import ServerSettings
from fmstack.server.visibility import set_visibility
from fmstack.settings import Settings

MODEL_REPOS = 40
DATASET_VERSIONS = 5


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _csv(path: Path, version: int) -> Path:
    words = [
        "ball goal team",
        "bread soup cheese",
        "bank card loan",
        "train ticket seat",
        "phone screen call",
    ]
    lines = ["text,label"]
    for i in range(2000):
        label = i % len(words)
        lines.append(f"{words[label]} example {i} of version {version} {'x' * (i % 90)},label{label}")
    lines += [",label0", "too,many,fields"]
    path.write_text("\n".join(lines) + "\n")
    return path


def seed(home: Path, versions: int, runs: int) -> tuple[str, dict[str, str]]:
    """Fill a hub; return the admin's token and a few refs the pages will show."""
    hub, accounts = open_hub(ServerSettings(hub=Settings.at(home)))
    accounts.add("admin", "user", admin=True)
    token = accounts.create_token("admin", ["admin"]).token
    src = home.parent / "src"
    src.mkdir()
    for v in range(1, DATASET_VERSIONS + 1):
        ingest(hub, IngestSpec(name="bench/intents", paths=[str(_csv(src / f"intents-{v}.csv", v))]))
    models = versions - DATASET_VERSIONS
    compressed = models // 6  # every fifth trained version gets a compressed child
    trained = models - compressed
    run_ids: list[int] = []
    made = 0
    for r in range(runs):
        run_id = hub.runs.start(
            "train", {"method": "lora", "run": r}, [f"bench/intents:{r % DATASET_VERSIONS + 1}"]
        )
        rows = [
            (s, {"loss": 2.0 / (1 + s / 50), "lr": 5e-4 * (1 - s / 200), "samples_per_s": 90.0})
            for s in range(200)
        ]
        for step, metrics in rows:
            hub.runs.log_metrics(run_id, step, metrics)
        hub.runs.log_metrics(run_id, 100, {"eval_accuracy": 0.8})
        hub.runs.log_metrics(run_id, 199, {"eval_accuracy": 0.9})
        hub.runs.append_log(run_id, "".join(f"step {s} loss {m['loss']:.3f}\n" for s, m in rows[::10]))
        share = trained // runs + (1 if r < trained % runs else 0)
        for _ in range(share):
            folder = src / f"m{made}"
            folder.mkdir()
            (folder / "config.json").write_text(f'{{"version": {made}}}')
            (folder / "adapter_model.safetensors").write_bytes(os.urandom(2048))
            repo = f"bench/model-{made % MODEL_REPOS:02d}"
            version = hub.push(
                repo, folder, "model", card=f"# {repo}\n\nLoRA adapter number {made}.", run_id=run_id
            )
            made += 1
            if made % 5 == 0 and compressed > 0:
                compressed -= 1
                child = hub.runs.start("compress", {"quantize": "int8"}, [version.ref])
                (folder / "config.json").write_text(f'{{"version": {made}, "int8": true}}')
                hub.push(f"{repo}-int8", folder, "model", run_id=child)
                hub.runs.finish(child)
        hub.runs.finish(run_id)
        run_ids.append(run_id)
    for info in hub.ls():
        set_visibility(hub, info.repo, "public")
    hub.tag("bench/model-00", "production")
    repos = hub.ls()
    total = sum(r.versions for r in repos)
    busiest = max(repos, key=lambda r: r.versions)
    all_runs = len(hub.runs.recent(limit=100_000))
    hub.close()
    print(f"seeded {total} versions in {len(repos)} repos, {all_runs} runs", flush=True)
    return token, {
        "repo": busiest.repo,
        "version": f"{busiest.repo}:{busiest.latest}",
        "run": str(run_ids[len(run_ids) // 2]),
        "run2": str(run_ids[len(run_ids) // 2 + 1]),
    }


def login(client: httpx.Client, token: str) -> None:
    form = client.get("/login").text
    csrf = re.search(r'name="csrf" value="([^"]+)"', form)
    if csrf is None:
        raise SystemExit("no CSRF token on the login page")
    answer = client.post("/login", data={"token": token, "csrf": csrf[1], "next": "/"})
    if answer.status_code != 303:
        raise SystemExit(f"login failed: {answer.status_code} {answer.text[:200]}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--versions", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=40)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-dashboard-") as tmp:
        home = Path(tmp) / "home"
        start = time.perf_counter()
        token, refs = seed(home, args.versions, args.runs)
        print(f"seeding took {time.perf_counter() - start:.0f} s", flush=True)
        repo, number = refs["version"].split(":")
        pages = {
            "home": "/",
            "search": "/?q=adapter+number+42",
            "repo": f"/repos/{refs['repo']}",
            "version": f"/repos/{repo}/versions/{number}",
            "dataset": "/repos/bench/intents/versions/3/data",
            "runs": "/runs",
            "run": f"/runs/{refs['run']}",
            "compare": f"/runs/compare?id={refs['run']}&id={refs['run2']}",
            "admin": "/admin",
        }
        baselines = {
            "api repo": f"/api/v1/repos/{refs['repo']}",
            "api lineage": f"/api/v1/repos/{repo}/versions/{number}/lineage",
            "api run metrics": f"/api/v1/runs/{refs['run']}/metrics",
        }
        port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("FMSTACK_")} | {
            "FMSTACK_HOME": str(home)
        }
        server = subprocess.Popen(
            [sys.executable, "-m", "fmstack", "server", "start", "--port", str(port)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            measure(f"http://127.0.0.1:{port}", token, pages, baselines, args.rounds)
        finally:
            server.terminate()
            server.wait(timeout=30)


def measure(url: str, token: str, pages: dict[str, str], baselines: dict[str, str], rounds: int) -> None:
    for _ in range(300):
        try:
            httpx.get(f"{url}/healthz", timeout=2)
            break
        except httpx.TransportError:
            time.sleep(0.2)
    times: dict[str, list[float]] = {name: [] for name in [*pages, *baselines]}
    with (
        httpx.Client(base_url=url, timeout=60) as page_client,
        httpx.Client(base_url=url, timeout=60, headers={"Authorization": f"Bearer {token}"}) as api_client,
    ):
        login(page_client, token)
        first = time.perf_counter()
        page_client.get(pages["dataset"]).raise_for_status()
        print(f"dataset page, first view (checkout + stats): {(time.perf_counter() - first) * 1000:.0f} ms")
        for round_ in range(rounds + 2):
            for name, path in [*pages.items(), *baselines.items()]:
                client = api_client if name.startswith("api") else page_client
                began = time.perf_counter()
                answer = client.get(path)
                elapsed = time.perf_counter() - began
                if answer.status_code != 200:
                    raise SystemExit(f"{path}: {answer.status_code} {answer.text[:300]}")
                if round_ >= 2:  # two warm-up rounds
                    times[name].append(elapsed * 1000)
    load = os.getloadavg()
    print(f"load average {load[0]:.1f} {load[1]:.1f} {load[2]:.1f}; {rounds} rounds")
    print(f"{'page':<18}{'p50 ms':>8}{'p95 ms':>8}{'max ms':>8}")
    for name, values in times.items():
        p95 = statistics.quantiles(values, n=20, method="inclusive")[18]
        print(f"{name:<18}{statistics.median(values):>8.1f}{p95:>8.1f}{max(values):>8.1f}")
    for page, api in (("repo", "api repo"), ("version", "api lineage"), ("run", "api run metrics")):
        ratio = statistics.median(times[page]) / statistics.median(times[api])
        print(f"{page} page / {api}: {ratio:.2f}x (medians)")


if __name__ == "__main__":
    main()
