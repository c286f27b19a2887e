"""Ingest and process stream in bounded memory: an input several times larger than the memory
budget goes through ``fmstack data ingest`` and ``fmstack data process --workers 1`` (normalize,
exact dedup, filter) in real subprocesses whose peak RSS (``getrusage(RUSAGE_CHILDREN)``) grows
by less than the budget over the same commands on a small input (20 MB: large enough that the
one-off warm-up of imports and allocator pools is in the baseline, small enough to fit the budget).

Memory is bounded by the shard size (rows held at once) plus 8 bytes per row for the exact-dedup
keys (about 24 while they are sorted). The input size is FMSTACK_TEST_BIG_BYTES (default 150 MB,
about half a minute on 2 cores) and the budget FMSTACK_TEST_RSS_BUDGET (default 50 MB);
bench/data.md records a 2 GB run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.data.conftest import WORDS

FMSTACK = str(Path(sys.executable).with_name("fmstack"))
BIG_BYTES = int(os.environ.get("FMSTACK_TEST_BIG_BYTES", 150_000_000))
BUDGET = int(os.environ.get("FMSTACK_TEST_RSS_BUDGET", 50_000_000))  # allowed growth over the baseline
SHARD_ROWS = 5_000
SPEC = """input: acme/{name}
output: acme/{name}-clean
shard_rows: 5000
ops:
  - op: normalize
    lowercase: true
  - op: dedup_exact
  - op: filter
    min_words: 3
"""


def generate_csv(path: Path, size: int) -> int:
    """Distinct-ish rows (~250 bytes) with some exact duplicates; returns the row count."""
    block = [" ".join(WORDS[(i * 7 + j * 3) % len(WORDS)] for j in range(36)) for i in range(1000)]
    rows, written = 0, 0
    with path.open("w") as f:
        f.write("text,label\n")
        while written < size:
            # rows come in identical pairs: the second of each is an exact duplicate
            chunk = "".join(
                f"{block[(rows + k) // 2 % 1000]} id{(rows + k) // 2},l{k // 2 % 7}\n" for k in range(10_000)
            )
            f.write(chunk)
            written += len(chunk)
            rows += 10_000
    return rows


# A fresh wrapper per command: its RUSAGE_CHILDREN high-water mark is exactly the peak RSS of the
# command (the kernel's count, not a sample), and of nothing run before it.
WRAPPER = (
    "import resource, subprocess, sys; done = subprocess.run(sys.argv[1:]); "
    "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024, file=sys.stderr); "
    "sys.exit(done.returncode)"
)


def peak_rss(argv: list[str], env: dict[str, str]) -> tuple[int, dict[str, object]]:
    """Run a command; return its peak RSS in bytes and its JSON output."""
    done = subprocess.run([sys.executable, "-c", WRAPPER, *argv], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return int(done.stderr.strip().splitlines()[-1]), json.loads(done.stdout)


def run_both(folder: Path, name: str, size: int, env: dict[str, str]) -> tuple[int, int, dict[str, object]]:
    data = folder / f"{name}.csv"
    generate_csv(data, size)
    spec = folder / f"{name}.yaml"
    spec.write_text(SPEC.format(name=name))
    ingest_peak, _ = peak_rss(
        [
            FMSTACK,
            "data",
            "ingest",
            str(data),
            "--name",
            f"acme/{name}",
            "--shard-rows",
            str(SHARD_ROWS),
            "--json",
        ],
        env,
    )
    process_peak, out = peak_rss([FMSTACK, "data", "process", str(spec), "--workers", "1", "--json"], env)
    data.unlink()
    return ingest_peak, process_peak, out


@pytest.mark.slow
def test_ingest_and_process_stay_within_the_memory_budget(fmstack_home: Path, tmp_path: Path) -> None:
    assert BIG_BYTES >= 3 * BUDGET, "the input must be several times the budget for the test to mean anything"
    env = {**os.environ, "FMSTACK_HOME": str(fmstack_home)}
    base_ingest, base_process, _ = run_both(tmp_path, "small", 20_000_000, env)
    big_ingest, big_process, out = run_both(tmp_path, "big", BIG_BYTES, env)
    report = (
        f"input {BIG_BYTES / 1e6:.0f} MB; ingest peak {big_ingest / 1e6:.0f} MB (baseline {base_ingest / 1e6:.0f}); "
        f"process peak {big_process / 1e6:.0f} MB (baseline {base_process / 1e6:.0f}); rows {out['rows']}"
    )
    print(report)
    assert big_ingest - base_ingest < BUDGET, report
    assert big_process - base_process < BUDGET, report
    assert out["ops"][1]["duplicates_removed"] > 0  # type: ignore[index]
