"""Edge runtime benchmark: the device distribution (``fmstack-edge``) against the full fmstack environment.

    .venv/bin/python bench/edge.py                     # --threads 1 --rounds 7 --texts 100 --cold-runs 5

1. Installed size: a fresh virtualenv with only ``pip install ./edge`` (no pip left in it, as on a
   device) against this environment (``sys.prefix``: torch, transformers and the rest of fmstack).
2. Cold start to first prediction: a new ``python`` process of the edge virtualenv that imports
   ``fmstack_edge``, loads all-MiniLM-L6-v2 int8 (``fmstack compress`` of the built-in base model) and
   embeds one text; wall time from starting the process, and its resident memory (VmRSS, VmHWM) then.
   Twice, interleaved: from the bundle's graph, and from the graph saved optimised on this machine
   (what the agent loads after a restart).
3. Batch-1 latency: ``fmstack_edge.Model`` against ``fmstack serve``'s ONNX runtime (tokenise + run +
   pool) on the same int8 version, the same texts and thread count, in interleaved rounds (the order
   alternates each round); the median per-text latency of each round, then the median and range over
   rounds, and the ratio edge / serve.

Texts come from BANKING77's test.csv (--data, default ``<repo>/../shared/datasets/banking77``), or
the built-in golden sentences when it is absent. ``--work DIR`` keeps the hub, the compressed model and
the virtualenv between runs (default: a temporary folder). ``--out`` writes the numbers as JSON.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from banking77 import add_data_flag, missing

REPO = Path(__file__).resolve().parents[1]
COLD = """
import sys, json
from pathlib import Path
from fmstack_edge import Model
model = Model(sys.argv[1], threads=int(sys.argv[2]), optimized=Path(sys.argv[3]) if len(sys.argv) > 3 else None)
model.embed(["where is my card?"])
status = dict(line.split(":", 1) for line in open("/proc/self/status") if ":" in line)
print(json.dumps({k: int(status[k].split()[0]) for k in ("VmRSS", "VmHWM")}))
"""


def folder_size(path: Path) -> int:
    return sum(p.lstat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())


def minilm_int8(work: Path) -> Path:
    """all-MiniLM-L6-v2 compressed to ONNX int8 by ``fmstack compress``, as a checked-out folder."""
    from fmstack.compress import CompressSpec, compress
    from fmstack.errors import NotFound
    from fmstack.hub import Hub
    from fmstack.hub.importers import import_builtin
    from fmstack.settings import Settings

    with Hub(Settings.at(work / "home")) as hub:
        try:
            return hub.checkout(hub.resolve("bench/minilm-int8").ref)
        except NotFound:
            pass
        import_builtin(hub)
        result = compress(
            hub, "fmstack/minilm-l6", CompressSpec(output="bench/minilm-int8", quantize="int8", threads=1)
        )
        assert result.version is not None
        return hub.checkout(result.version.ref)


def edge_venv(work: Path) -> Path:
    """A virtualenv with fmstack-edge only (built once in ``work``); its python."""
    venv = work / "edge-venv"
    python = venv / "bin" / "python"
    if python.exists():
        return python
    source = shutil.copytree(
        REPO / "edge", work / "edge-src", ignore=shutil.ignore_patterns("build", "*.egg-info")
    )
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "-q", str(source)], check=True
    )
    return python


def cold_starts(python: Path, model: Path, threads: int, runs: int, work: Path) -> dict[str, Any]:
    """Fresh processes to the first prediction: loading the bundle's graph (``fmstack-edge serve DIR``,
    an agent's first install) and a restart that loads the graph the agent saved optimised for this
    machine (``optimized``: what an agent does after its first start), interleaved."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    optimized = work / "optimized.onnx"
    optimized.unlink(missing_ok=True)
    first = [str(python), "-c", COLD, str(model), str(threads), str(optimized)]
    subprocess.run(first, env=env, check=True, capture_output=True)
    times: dict[str, list[float]] = {"graph": [], "optimized": []}
    memory = []
    for _ in range(runs):
        for name, extra in (("graph", []), ("optimized", [str(optimized)])):
            start = time.perf_counter()
            done = subprocess.run(
                [str(python), "-c", COLD, str(model), str(threads), *extra],
                capture_output=True,
                text=True,
                env=env,
                check=True,
            )
            times[name].append(time.perf_counter() - start)
            memory.append(json.loads(done.stdout))
    result: dict[str, Any] = {
        "rss_mb": statistics.median(m["VmRSS"] for m in memory) / 1024,
        "peak_rss_mb": max(m["VmHWM"] for m in memory) / 1024,
    }
    for name, values in times.items():
        result[f"cold_start_{name}_s"] = statistics.median(values)
        result[f"cold_start_{name}_range_s"] = [min(values), max(values)]
    return result


def latencies(model: Path, texts: list[str], threads: int, rounds: int) -> dict[str, Any]:
    sys.path.insert(0, str(REPO / "edge" / "src"))
    from fmstack_edge import Model

    from fmstack.servable import read_descriptor
    from fmstack.serve.runtimes.onnx import OnnxRuntime

    edge = Model(model, threads=threads)
    serve = OnnxRuntime(model, read_descriptor(model), threads)  # type: ignore[arg-type]
    runners = {"edge": lambda t: edge.outputs([t]), "serve": lambda t: serve.forward(serve.encode([t]))}
    diff = max(float(abs(runners["edge"](t) - runners["serve"](t)).max()) for t in texts[:20])
    for text in texts[:10]:  # warm both
        runners["edge"](text), runners["serve"](text)
    medians: dict[str, list[float]] = {"edge": [], "serve": []}
    for index in range(rounds):
        order = ["edge", "serve"] if index % 2 == 0 else ["serve", "edge"]
        for name in order:
            times = []
            for text in texts:
                start = time.perf_counter()
                runners[name](text)
                times.append((time.perf_counter() - start) * 1000)
            medians[name].append(statistics.median(times))
    result: dict[str, Any] = {"max_output_difference": diff}
    for name, values in medians.items():
        result[f"{name}_ms"] = statistics.median(values)
        result[f"{name}_range_ms"] = [min(values), max(values)]
    ratios = [e / s for e, s in zip(medians["edge"], medians["serve"], strict=True)]
    result["ratio"] = statistics.median(ratios)
    result["ratio_range"] = [min(ratios), max(ratios)]
    return result


def bench_texts(data: Path, limit: int) -> tuple[list[str], str]:
    if missing(data) is None and (data / "test.csv").is_file():
        with open(data / "test.csv", newline="") as f:
            return [row["text"] for row in csv.DictReader(f)][:limit], "BANKING77 test.csv"
    from fmstack.edge.bundle import DEFAULT_GOLDEN

    print(f"BANKING77 not found at {data}: using the built-in golden sentences", file=sys.stderr)
    return (DEFAULT_GOLDEN * (limit // len(DEFAULT_GOLDEN) + 1))[:limit], "built-in sentences"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add_data_flag(parser)
    parser.add_argument("--work", type=Path, help="Keep the hub, model and virtualenv here between runs.")
    parser.add_argument("--threads", type=int, default=1, help="ONNX Runtime threads for both (default 1).")
    parser.add_argument("--rounds", type=int, default=7, help="Interleaved latency rounds (default 7).")
    parser.add_argument("--texts", type=int, default=100, help="Texts per round (default 100).")
    parser.add_argument("--cold-runs", type=int, default=5, help="Cold starts measured (default 5).")
    parser.add_argument("--out", type=Path, help="Write the numbers as JSON here.")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="fmstack-bench-edge-") as tmp:
        work = args.work or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        model = minilm_int8(work)
        python = edge_venv(work)
        texts, source = bench_texts(args.data, args.texts)
        full, device = folder_size(Path(sys.prefix)), folder_size(python.parent.parent)
        results: dict[str, Any] = {
            "load_average": os.getloadavg(),
            "texts": source,
            "threads": args.threads,
            "model_mb": folder_size(model) / 2**20,
            "edge_env_mb": device / 2**20,
            "full_env_mb": full / 2**20,
            "size_ratio": device / full,
            **cold_starts(python, model, args.threads, args.cold_runs, work),
            **latencies(model, texts, args.threads, args.rounds),
        }
    results["load_average_after"] = os.getloadavg()
    print(json.dumps(results, indent=2))
    print(
        f"\n| measure | edge | full / serve | goal |\n| --- | --- | --- | --- |\n"
        f"| installed size | {results['edge_env_mb']:.0f} MB | {results['full_env_mb']:.0f} MB "
        f"({results['size_ratio']:.1%}) | <= 10% |\n"
        f"| cold start to first prediction, bundle graph | {results['cold_start_graph_s']:.2f} s | | <= 0.5 s |\n"
        f"| cold start to first prediction, saved optimised graph | {results['cold_start_optimized_s']:.2f} s | | <= 0.5 s |\n"
        f"| RSS after first prediction (highest peak) | {results['rss_mb']:.0f} MB ({results['peak_rss_mb']:.0f}) | | <= 150 MB |\n"
        f"| batch-1 latency (median of rounds) | {results['edge_ms']:.2f} ms | {results['serve_ms']:.2f} ms "
        f"(ratio {results['ratio']:.3f}, range {results['ratio_range'][0]:.3f}-{results['ratio_range'][1]:.3f}) | within 10% |"
    )
    if args.out:
        args.out.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
