"""N LoRA adapters on one base behind one ``fmstack serve``: throughput and latency with requests
spread across the adapters, this tree against another source tree (``--baseline-src``).

    git archive <commit before the change> src | tar -x -C /tmp/serve-before
    .venv/bin/python bench/serve_adapters.py --baseline-src /tmp/serve-before --adapters 4 --rounds 5

Both servers serve the same ``--adapters`` LoRA classification adapters (rank 8 on query and value, a
linear head over mean pooling, as ``fmstack train --method lora`` writes them; weights drawn at
random, since what is measured is compute, not accuracy) of the built-in MiniLM (PyTorch), with the
same flags. ``--concurrency`` closed-loop clients each send one text per ``POST /v1/classify``, the
adapter chosen round-robin per request, so every adapter's queue holds about ``c / N`` texts. Each of
``--rounds`` rounds measures every server for ``--seconds`` in turn (the order alternating between
rounds): the machine is shared and drifts over minutes, so both sides see the same stretches. The
table gives the median of the rounds and their range for requests/s, p50 and p99.

Before the change each adapter's batch took the base's lock: batches of different adapters ran one
after the other. After it, the batches that wait for the base go through it in one forward pass,
each row with its own adapter (PEFT ``adapter_names=``).

Texts: BANKING77's test split when ../shared/datasets/banking77 exists, else generated sentences.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import httpx
import psutil

# bench/serve.py's load generator and server helpers (this folder is on the path when run as a script)
sys.path.insert(0, str(Path(__file__).resolve().parent))
from serve import (
    FMSTACK,
    Connection,
    Sample,
    cpu_seconds,
    free_port,
    load,
    load_texts,
    start,
    stop,
)

LABELS = ["card", "transfer", "refund", "account"]


def build_adapter(base_folder: Path, base_ref: str, dest: Path, seed: int) -> Path:
    """A LoRA classification adapter in ``fmstack train``'s format, weights drawn from ``seed``."""
    import torch
    from peft import LoraConfig, get_peft_model

    from fmstack.train.adapter_descriptor import ADAPTER_DESCRIPTOR, AdapterDescriptor, write
    from fmstack.train.pooled import PooledEncoderForSequenceClassification

    torch.manual_seed(0)  # the descriptor's init_seed: the server rebuilds the same untrained head
    model = PooledEncoderForSequenceClassification.from_encoder(
        base_folder,
        num_labels=len(LABELS),
        id2label=dict(enumerate(LABELS)),
        label2id={k: i for i, k in enumerate(LABELS)},
    )
    lora = LoraConfig(task_type="SEQ_CLS", r=8, lora_alpha=16, target_modules=["query", "value"])
    peft_model = get_peft_model(model, lora)
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():  # stands in for training: LoRA B starts at zero
        for name, param in peft_model.named_parameters():
            if "lora_B" in name or "modules_to_save" in name:
                param.add_(torch.randn(param.shape, generator=generator) * 0.05)
    peft_model.save_pretrained(str(dest))
    descriptor = AdapterDescriptor(
        method="lora", format="peft", base=base_ref, task="classification", labels=LABELS, max_length=128
    )
    write(dest, ADAPTER_DESCRIPTOR, descriptor)
    return dest


def prepare(home: Path, count: int) -> list[str]:
    """The built-in MiniLM and ``count`` adapters on it, pushed to the hub at ``home``."""
    from fmstack.hub import Hub
    from fmstack.hub.importers import import_builtin
    from fmstack.settings import Settings

    with Hub(Settings.at(home)) as hub:
        base = import_builtin(hub)
        folder = hub.checkout(base.ref)
        refs = []
        for i in range(count):
            adapter = build_adapter(folder, base.ref, home / f"build-{i}", seed=i + 1)
            refs.append(hub.push(f"bench/lora-{i}", adapter, "adapter").ref)
        return refs


async def spread_level(
    url: str, refs: Sequence[str], texts: Sequence[str], concurrency: int, seconds: float
) -> Sample:
    """``concurrency`` clients for ``seconds``, request ``k`` to adapter ``k mod N``, one text each;
    latencies of the answers (200) only, the others counted as errors."""
    parsed = httpx.URL(url)
    bodies = [
        json.dumps({"model": refs[k % len(refs)], "input": texts[k % len(texts)]}).encode()
        for k in range(len(texts) * len(refs))
    ]
    latencies: list[float] = []
    answered_at: list[float] = []
    stopped: list[float] = []
    errors = issued = 0
    stop_at = time.perf_counter() + seconds

    async def client() -> None:
        nonlocal issued, errors
        conn = Connection(parsed.host, parsed.port or 80)
        try:
            while time.perf_counter() < stop_at:
                body = bodies[issued % len(bodies)]
                issued += 1
                begin = time.perf_counter()
                status = await conn.post("/v1/classify", body)
                now = time.perf_counter()
                if status == 200:  # a refusal (429) answers fast: it is no latency of an answer
                    latencies.append(now - begin)
                    answered_at.append(now)
                errors += status != 200
            stopped.append(time.perf_counter())
        finally:
            conn.close()

    await asyncio.gather(*(client() for _ in range(concurrency)))
    if not answered_at:
        return Sample(latencies, errors, 0.0, 0)
    first, last = min(answered_at), stopped[0]  # full concurrency only, as bench/serve.py counts
    return Sample(latencies, errors, last - first, sum(1 for t in answered_at if first < t <= last))


def start_server(
    refs: Sequence[str], env: dict[str, str], src: Path | None, args: argparse.Namespace
) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    cmd = [FMSTACK, "serve", *refs, "--port", str(port), "--log-level", "warning", "--poll-aliases-s", "0"]
    cmd += ["--threads", str(args.threads)] if args.threads else []
    if src is not None:
        env = {**env, "PYTHONPATH": str(src.resolve() / "src")}
    url = f"http://127.0.0.1:{port}"
    return start(cmd, url, env), url


def stats(samples: Sequence[Sample]) -> dict[str, list[float]]:
    """Per round: requests/s answered 200, p50 and p99 of the 200s in ms, share of requests not 200,
    and the server's CPU ms per request answered (all its threads)."""
    out: dict[str, list[float]] = {"rps": [], "p50": [], "p99": [], "errors": [], "cpu": []}
    for s in samples:
        out["cpu"].append(1000 * s.cpu_s / max(1, len(s.latencies)))
        ordered = sorted(s.latencies) or [0.0]
        out["rps"].append(s.answered / s.seconds if s.seconds else 0.0)
        out["p50"].append(1000 * statistics.median(ordered))
        out["p99"].append(1000 * ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))])
        out["errors"].append(100 * s.errors / max(1, s.errors + len(s.latencies)))
    return out


def spread(values: list[float]) -> str:
    return f"{statistics.median(values):.1f} ({min(values):.1f}-{max(values):.1f})"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--adapters", type=int, default=4, help="LoRA adapters on the one base.")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=8.0, help="Per server and round.")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--texts", type=int, default=2000)
    parser.add_argument("--threads", type=int, default=None, help="--threads of both servers.")
    parser.add_argument(
        "--baseline-src", type=Path, default=None, help="The src folder's parent of another tree."
    )
    args = parser.parse_args()

    texts, source = load_texts(args.texts)
    with tempfile.TemporaryDirectory(prefix="fmstack-bench-adapters-") as home:
        env = {**os.environ, "FMSTACK_HOME": home}
        env.pop("FMSTACK_DATABASE_URL", None)
        env.pop("FMSTACK_STORE_URL", None)
        refs = prepare(Path(home), args.adapters)
        trees = {"this tree": None} | ({"before": args.baseline_src} if args.baseline_src else {})
        servers: dict[str, tuple[subprocess.Popen[bytes], str]] = {}
        try:
            for name, src in trees.items():
                servers[name] = start_server(refs, env, src, args)
                load(spread_level(servers[name][1], refs, texts, args.concurrency, 4.0))  # warm-up
            print(
                f"{args.adapters} adapters, concurrency {args.concurrency}, {args.rounds} rounds of "
                f"{args.seconds} s per server; {os.cpu_count()} cores, load average "
                f"{os.getloadavg()[0]:.2f}; texts: {source}",
                flush=True,
            )
            samples: dict[str, list[Sample]] = {name: [] for name in trees}
            for r in range(args.rounds):
                order = list(trees) if r % 2 == 0 else list(reversed(trees))
                for name in order:
                    proc, url = servers[name]
                    process = psutil.Process(proc.pid)
                    cpu_before, _ = cpu_seconds(process)
                    sample = load(spread_level(url, refs, texts, args.concurrency, args.seconds))
                    sample.cpu_s = cpu_seconds(process)[0] - cpu_before
                    samples[name].append(sample)
                    one = stats([sample])
                    print(
                        f"  round {r + 1} {name:<9} {one['rps'][0]:7.1f} req/s  p50 {one['p50'][0]:6.1f} ms  "
                        f"p99 {one['p99'][0]:6.1f} ms (of the 200s)  not 200: {sample.errors}  "
                        f"server CPU {one['cpu'][0]:.1f} ms/request",
                        flush=True,
                    )
        finally:
            for proc, _ in servers.values():
                stop(proc)
    print(f"load average after: {os.getloadavg()[0]:.2f}\n")
    print(
        "| server | req/s | p50 ms | p99 ms | not 200, % | server CPU ms/request |  (median of the rounds, range)"
    )
    print("| --- | --- | --- | --- | --- | --- |")
    table = {name: stats(s) for name, s in samples.items()}
    for name, st in table.items():
        cells = " | ".join(spread(st[k]) for k in ("rps", "p50", "p99", "errors", "cpu"))
        print(f"| {name} | {cells} |")
    if "before" in table:
        ratios = [a / b for a, b in zip(table["this tree"]["rps"], table["before"]["rps"], strict=True)]
        print(
            f"\nthis tree / before, req/s per round: median {statistics.median(ratios):.2f}x "
            f"({min(ratios):.2f}-{max(ratios):.2f})"
        )
        cpu = [a / b for a, b in zip(table["before"]["cpu"], table["this tree"]["cpu"], strict=True)]
        print(
            f"before / this tree, server CPU per request per round: median {statistics.median(cpu):.2f}x "
            f"({min(cpu):.2f}-{max(cpu):.2f})"
        )


if __name__ == "__main__":
    main()
