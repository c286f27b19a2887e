"""What admission costs the event loop: ``ModelWorker.submit`` of this tree against another source tree's.

    .venv/bin/python bench/serve_submit.py --baseline-src /tmp/fmstack-before --rounds 3

``submit`` is what the event loop runs for every inference request once its texts are tokenised:
the admission check (``serve.admission``), then the queue. Each round runs, in a fresh process per tree
(alternating, so both see the same stretches of a shared machine), 5 x 20,000 submits of one 16-token
text to a worker whose runtime never finishes its first batch (the queue only grows, as in a burst),
with a measured throughput fast enough that every request is admitted after the full check; it reports
the best of the 5 in microseconds per submit.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

CHILD = """
import asyncio, threading, time
import numpy as np
from fmstack.serve.batching import Limits
from fmstack.serve.runtimes.base import RuntimeInfo
from fmstack.serve.worker import ModelWorker

class Blocked:
    gate = threading.Event()
    info = RuntimeInfo(task="embedding", platform="fake", max_length=100, dimensions=2, batches=1)
    def encode(self, texts): return [[1] * 16 for _ in texts]
    def forward(self, batch):
        self.gate.wait()
        return np.zeros((len(batch), 2), np.float32)
    def close(self): pass

async def main():
    runtime = Blocked()
    worker = ModelWorker("m", runtime, Limits(8192, 64, 0.0, 0.9), max_queue=10**7)
    if hasattr(worker, "throughput"):
        worker.throughput.update(1000, 0.001)
    worker.start()
    ids = [[1] * 16]
    best = float("inf")
    for _ in range(5):
        start = time.perf_counter()
        for _ in range(20000):
            worker.submit(ids, time.monotonic() + 30)
        best = min(best, (time.perf_counter() - start) / 20000)
    print(best * 1e6)
    runtime.gate.set()

asyncio.run(main())
"""


def submit_us(src: Path) -> float:
    env = {**os.environ, "PYTHONPATH": str(src.resolve() / "src")}
    out = subprocess.run([sys.executable, "-c", CHILD], env=env, capture_output=True, text=True, check=True)
    return float(out.stdout.strip())


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--baseline-src", type=Path, required=True, help="Source tree to compare with.")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    print(f"load average {os.getloadavg()[0]:.2f}")
    times: dict[str, list[float]] = {"this tree": [], "baseline": []}
    for _ in range(args.rounds):
        times["baseline"].append(submit_us(args.baseline_src))
        times["this tree"].append(submit_us(ROOT))
        print(
            f"  baseline {times['baseline'][-1]:.2f} us, this tree {times['this tree'][-1]:.2f} us",
            flush=True,
        )
    this, base = statistics.median(times["this tree"]), statistics.median(times["baseline"])
    print(f"median: this tree {this:.2f} us per submit, baseline {base:.2f} us: {this - base:+.2f} us")
    print(f"load average {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
