"""`fmstack data process --executor ray` on a one-node vs a two-node Ray cluster (tests/raycluster.py:
1 CPU per node, both on this machine), the same synthetic dataset and spec (normalize, dedup_exact,
split), one run each per repeat, the one-node cluster first. On one machine the two nodes share its
cores: this measures the overhead and the scheduling across nodes, not a speed-up from more machines.

    .venv/bin/python bench/scale_data.py [--rows 1000000] [--shard-rows 50000] [--repeats 1]
"""

from __future__ import annotations

import argparse
import csv
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/raycluster.py

from tests.raycluster import DRIVER_ENV, ray_cluster

WORDS = [
    "refund",
    "card",
    "pin",
    "account",
    "transfer",
    "balance",
    "fee",
    "limit",
    "app",
    "crash",
    "lost",
    "stolen",
    "cash",
    "atm",
    "top",
    "up",
]


def make_csv(path: Path, rows: int) -> None:
    rng = random.Random(0)
    with open(path, "w", newline="") as f:
        out = csv.writer(f)
        out.writerow(["text", "label"])
        for i in range(rows):
            words = rng.choices(WORDS, k=rng.randint(4, 14))
            out.writerow(
                [f"  {' '.join(words).upper() if i % 7 == 0 else ' '.join(words)} #{i % 50000}", words[0]]
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--shard-rows", type=int, default=50_000)
    parser.add_argument("--repeats", type=int, default=1)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-scale-data-") as tmp:
        root = Path(tmp)
        env = {k: v for k, v in os.environ.items() if not k.startswith("FMSTACK_")}
        env.update(DRIVER_ENV, FMSTACK_HOME=str(root / "home"))
        make_csv(root / "rows.csv", args.rows)
        subprocess.run(
            [sys.executable, "-m", "fmstack", "data", "ingest", str(root / "rows.csv"), "--name", "bench/rows",
             "--text-column", "text", "--label-column", "label", "--shard-rows", str(args.shard_rows)],
            env=env, check=True, capture_output=True,
        )  # fmt: skip
        results: dict[int, list[float]] = {1: [], 2: []}
        for r in range(args.repeats):
            for nodes in (1, 2):
                spec = root / f"spec-{r}-{nodes}.yaml"
                spec.write_text(
                    f"input: bench/rows\noutput: bench/clean-{r}-{nodes}\n"
                    "ops: [{op: normalize}, {op: dedup_exact}, {op: split, train: 0.8, validation: 0.1, test: 0.1}]\n"
                )
                with ray_cluster(root / f"ray-{r}-{nodes}", nodes=nodes) as cluster:
                    start = time.perf_counter()
                    run = subprocess.run(
                        [sys.executable, "-m", "fmstack", "data", "process", str(spec), "--executor", "ray",
                         "--ray-address", cluster.address],
                        env=env, capture_output=True, text=True,
                    )  # fmt: skip
                    elapsed = time.perf_counter() - start
                if run.returncode != 0:
                    raise SystemExit(run.stderr)
                results[nodes].append(elapsed)
                print(f"repeat {r}: {nodes} node(s): {elapsed:.1f} s", flush=True)
    one, two = statistics.median(results[1]), statistics.median(results[2])
    spread = {n: f"{min(t):.1f}-{max(t):.1f}" for n, t in results.items()}
    print(
        f"{args.rows:,} rows: 1 node median {one:.1f} s ({spread[1]}), 2 nodes {two:.1f} s ({spread[2]}); "
        f"2 nodes / 1 node time {two / one:.2f}x"
    )


if __name__ == "__main__":
    main()
