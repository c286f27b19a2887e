"""Hub throughput and dedup benchmark.

1. Push and pull of a ~200 MB model folder, as a ratio to a plain copy of the same files in the same run
   (goal >= 0.7x). Push hashes every byte, writes it to a temp file, fsyncs and renames; pull re-hashes
   every byte it writes. The baseline is `shutil.copytree` (no hashing, no fsync).
2. 10 adapter versions that each carry the same base model: bytes on disk vs bytes pushed.

    .venv/bin/python bench/hub.py [--size-mb 200] [--repeats 3]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from fmstack.hub import Hub
from fmstack.settings import Settings


def make_model_folder(root: Path, size_mb: int) -> Path:
    root.mkdir(parents=True)
    with open(root / "model.safetensors", "wb") as f:
        for _ in range(size_mb):
            f.write(os.urandom(1024 * 1024))
    (root / "config.json").write_text('{"model_type": "bert"}')
    (root / "tokenizer.json").write_bytes(os.urandom(450_000))
    (root / "vocab.txt").write_bytes(os.urandom(230_000))
    return root


def folder_bytes(root: Path) -> int:
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file())


def timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def copy_and_fsync(src: Path, dest: Path) -> None:
    shutil.copytree(src, dest)
    for path in dest.rglob("*"):
        if path.is_file():
            fd = os.open(path, os.O_RDONLY)
            os.fsync(fd)
            os.close(fd)


def hash_only(src: Path) -> None:
    for path in src.rglob("*"):
        if path.is_file():
            with open(path, "rb") as f:
                hashlib.file_digest(f, "sha256")


def bench_throughput(work: Path, size_mb: int, repeats: int) -> dict[str, float]:
    src = make_model_folder(work / "model", size_mb)
    total = folder_bytes(src)
    copies, synced, hashes, pushes, pulls, blob_copies = [], [], [], [], [], []
    for i in range(repeats):
        home = work / f"home{i}"
        with Hub(Settings.at(home)) as hub:
            copies.append(timed(lambda: shutil.copytree(src, work / f"copy{i}")))  # noqa: B023
            synced.append(timed(lambda: copy_and_fsync(src, work / f"synced{i}")))  # noqa: B023
            hashes.append(timed(lambda: hash_only(src)))
            pushes.append(timed(lambda: hub.push(f"bench/m{i}", src, "model")))  # noqa: B023
            blob_copies.append(timed(lambda: shutil.copytree(home / "blobs", work / f"blobcopy{i}")))  # noqa: B023
            pulls.append(timed(lambda: hub.pull(f"bench/m{i}", work / f"pull{i}")))  # noqa: B023
        for path in (work / f"copy{i}", work / f"synced{i}", work / f"blobcopy{i}", work / f"pull{i}", home):
            shutil.rmtree(path)
    mb = total / 1e6
    copy, sync, hashed, push, pull, blob_copy = (
        statistics.median(x) for x in (copies, synced, hashes, pushes, pulls, blob_copies)
    )
    return {
        "size_mb": mb,
        "copy_mb_s": mb / copy,
        "copy_fsync_mb_s": mb / sync,
        "sha256_mb_s": mb / hashed,
        "push_vs_copy_fsync": sync / push,
        "push_vs_sha256": hashed / push,
        "push_mb_s": mb / push,
        "push_ratio": copy / push,
        "pull_copy_mb_s": mb / blob_copy,
        "pull_mb_s": mb / pull,
        "pull_ratio": blob_copy / pull,
    }


def bench_dedup(work: Path, base_mb: int, adapters: int = 10) -> dict[str, float]:
    base = make_model_folder(work / "base", base_mb)
    pushed = 0
    with Hub(Settings.at(work / "dedup-home")) as hub:
        for i in range(adapters):
            folder = work / f"adapter{i}"
            shutil.copytree(base, folder / "base")
            (folder / "adapter_model.safetensors").write_bytes(os.urandom(300_000))
            (folder / "adapter_config.json").write_text(f'{{"r": 8, "seed": {i}}}')
            pushed += folder_bytes(folder)
            hub.push(f"bench/adapter{i}", folder, "adapter")
        on_disk = sum(hub.blobs.size(sha) for sha in hub.blobs.list())
    return {
        "adapters": adapters,
        "pushed_mb": pushed / 1e6,
        "on_disk_mb": on_disk / 1e6,
        "ratio": on_disk / pushed,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--size-mb", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--dedup-base-mb", type=int, default=90, help="size of the shared base (MiniLM is ~91 MB)"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="fmstack-bench-hub-") as tmp:
        t = bench_throughput(Path(tmp), args.size_mb, args.repeats)
        print(f"folder: {t['size_mb']:.0f} MB, median of {args.repeats}")
        print(
            f"push: {t['push_mb_s']:.0f} MB/s vs copytree {t['copy_mb_s']:.0f} MB/s -> {t['push_ratio']:.2f}x (goal >= 0.7x)"
        )
        print(
            f"      vs copytree + fsync {t['copy_fsync_mb_s']:.0f} MB/s -> {t['push_vs_copy_fsync']:.2f}x; "
            f"vs sha256 of the files alone {t['sha256_mb_s']:.0f} MB/s -> {t['push_vs_sha256']:.2f}x"
        )
        print(
            f"pull: {t['pull_mb_s']:.0f} MB/s vs copytree of the blobs {t['pull_copy_mb_s']:.0f} MB/s "
            f"-> {t['pull_ratio']:.2f}x (goal >= 0.7x)"
        )
        d = bench_dedup(Path(tmp), args.dedup_base_mb)
        print(
            f"dedup: {d['adapters']:.0f} adapter versions sharing one base: pushed {d['pushed_mb']:.0f} MB, "
            f"on disk {d['on_disk_mb']:.0f} MB ({d['ratio']:.3f}x)"
        )


if __name__ == "__main__":
    main()
