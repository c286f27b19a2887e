"""How long a trivially bad ``fmstack train`` flag takes to be refused (issue: 10-15 s, because torch,
transformers and peft were imported before the spec was read).

    .venv/bin/python bench/cli_refusal.py            # --repeats 5; about a minute on 2 shared cores

Each repeat runs, interleaved, in fresh processes: ``fmstack --version`` (the floor: Python, Typer and
the CLI's own imports), ``fmstack train finetune ... --lr -1`` (the refusal as it is now) and the same
command with ``fmstack.train.run`` imported first (the baseline: what the refusal cost when the
training stack was imported before validation). Wall time depends on how busy the machine is, so CPU
time (user + system of the child) is reported too; both are medians. The load average is printed.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time

REFUSED = ["train", "finetune", "--base", "acme/base", "--data", "acme/data", "--lr", "-1"]
PRELOAD = "import sys, fmstack.train.run; from fmstack.cli.main import main; sys.exit(main(sys.argv[1:]))"
CASES: dict[str, list[str]] = {
    "fmstack --version (floor)": ["-m", "fmstack", "--version"],
    "refusal, validate first (now)": ["-m", "fmstack", *REFUSED],
    "refusal after importing the training stack (before)": ["-c", PRELOAD, *REFUSED],
}


def timed(args: list[str], env: dict[str, str]) -> tuple[float, float]:
    """(wall seconds, CPU seconds) of one fresh process; a refusal must exit 1 and name --lr."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, *args], capture_output=True, text=True, env=env, check=False)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if "--version" not in args and (
        proc.returncode != 1 or "lr: Input should be greater than 0" not in proc.stderr
    ):
        raise SystemExit(f"unexpected result of {args}: exit {proc.returncode}\n{proc.stderr}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as home:
        env = {**os.environ, "FMSTACK_HOME": home}
        results: dict[str, list[tuple[float, float]]] = {name: [] for name in CASES}
        for _ in range(args.repeats):
            for name, case in CASES.items():
                results[name].append(timed(case, env))
    print(
        f"load average (1 min): {load_before:.1f} before, {os.getloadavg()[0]:.1f} after; {os.cpu_count()} cores"
    )
    print("| command | wall s (median) | CPU s (median) |\n| --- | --- | --- |")
    for name, runs in results.items():
        wall = statistics.median(w for w, _ in runs)
        cpu = statistics.median(c for _, c in runs)
        print(f"| {name} | {wall:.2f} | {cpu:.2f} |")


if __name__ == "__main__":
    main()
