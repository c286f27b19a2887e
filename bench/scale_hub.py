"""Hub push and pull of a ~200 MB model: a local blob folder vs S3 (SeaweedFS on this machine), in the
same run, interleaved (local, S3, local, S3, ...), medians and spread of each. Every repeat pushes
fresh bytes (no dedup) into a fresh repo and pulls into a fresh folder. SeaweedFS is started by
tests/seaweed.py in a temp folder and stopped at the end; metadata is SQLite in both cases.

    .venv/bin/python bench/scale_hub.py [--size-mb 200] [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/seaweed.py

from tests.seaweed import seaweedfs

from fmstack.hub import Hub
from fmstack.settings import Settings


def make_model(folder: Path, size_mb: int, seed: int) -> Path:
    folder.mkdir(parents=True)
    block = os.urandom(1024 * 1024)
    with open(folder / "model.safetensors", "wb") as f:
        for i in range(size_mb):  # distinct bytes per repeat: every push uploads everything
            f.write(seed.to_bytes(4, "little") + i.to_bytes(4, "little") + block[8:])
    (folder / "config.json").write_text('{"model_type": "bert"}')
    return folder


def one(settings: Settings, root: Path, size_mb: int, seed: int) -> tuple[float, float]:
    model = make_model(root / f"src-{seed}", size_mb, seed)
    with Hub(settings) as hub:
        start = time.perf_counter()
        version = hub.push(f"bench/m{seed}", model, "model")
        pushed = time.perf_counter() - start
        start = time.perf_counter()
        hub.pull(version.ref, root / f"out-{seed}")
        pulled = time.perf_counter() - start
    return pushed, pulled


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-scale-hub-") as tmp:
        root = Path(tmp)
        with seaweedfs(root / "seaweedfs") as s3:
            os.environ.update(s3.env())  # botocore reads the endpoint and credentials from here
            stores = {
                "local": Settings.at(root / "local"),
                "s3": Settings(
                    home=root / "s3", database_url=f"sqlite:///{root / 's3.db'}", store_url=s3.url("bench")
                ),
            }
            times: dict[str, dict[str, list[float]]] = {k: {"push": [], "pull": []} for k in stores}
            for r in range(args.repeats):
                for name, settings in stores.items():
                    push, pull = one(settings, root / name / "work", args.size_mb, seed=r * 10 + len(name))
                    times[name]["push"].append(push)
                    times[name]["pull"].append(pull)
                    print(f"repeat {r} {name}: push {push:.2f} s, pull {pull:.2f} s", flush=True)
    for op in ("push", "pull"):
        med = {k: statistics.median(times[k][op]) for k in stores}
        spread = {k: f"{min(times[k][op]):.2f}-{max(times[k][op]):.2f}" for k in stores}
        print(
            f"{op}: local {med['local']:.2f} s ({args.size_mb / med['local']:.0f} MB/s, range {spread['local']}), "
            f"s3 {med['s3']:.2f} s ({args.size_mb / med['s3']:.0f} MB/s, range {spread['s3']}); "
            f"s3/local time {med['s3'] / med['local']:.2f}x"
        )


if __name__ == "__main__":
    main()
