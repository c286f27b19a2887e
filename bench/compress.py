"""Compression benchmark on banking77 (77 intents) with a fine-tuned MiniLM classifier, and embedding
throughput of the ONNX runtime against sentence-transformers.

    .venv/bin/python bench/compress.py                 # --train-limit 4000 --epochs 2 --threads 2

1. Fine-tune ``fmstack/minilm-l6`` (all-MiniLM-L6-v2) on the first --train-limit training rows with
   ``fmstack.train`` (full fine-tuning, max length 64).
2. ``fmstack.compress``: ONNX fp32 (fused) and ONNX int8 (dynamic, per-channel), each measured against
   the torch fp32 parent in the same run: file size, latency at batch 1 and 32, test accuracy.
3. Embeddings: ``fmstack/minilm-l6`` compressed to ONNX fp32 and int8; texts/s of tokenise + ONNX
   Runtime + pooling in length-sorted batches of 32 against ``SentenceTransformer.encode(batch_size=32)``
   in fp32 and with int8 Linear layers, on the same texts with the same thread count, in interleaved
   rounds: fp32 vs fp32, int8 vs int8 and the mixed int8 vs fp32, medians with their range.

BANKING77 comes from --data DIR (default ``<repo>/../shared/datasets/banking77``); skips with a
message when it is absent. Prints a Markdown table; --out
writes the numbers as JSON.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import torch

from banking77 import add_data_flag, missing

GOALS = {
    "size_ratio": 0.27,
    "speedup_b32": 1.5,
    "speedup_b1": 4.0,
    "drop_points": 0.5,
    "embedding_speedup": 3.0,
}


def read_csv(path: Path, limit: int | None, seed: int = 0) -> tuple[list[str], list[str]]:
    """A seeded random sample of ``limit`` rows (all rows, shuffled, when None): the files are sorted by
    intent, so their first rows would cover only a few of the 77 intents."""
    with path.open(newline="") as f:
        rows = list(csv.DictReader(f))
    random.Random(seed).shuffle(rows)
    rows = rows[:limit]
    return [r["text"] for r in rows], [r["category"] for r in rows]


def push_banking77(hub: Any, root: Path, source: Path, train_limit: int) -> str:
    from fmstack.data import format as dataformat

    labels = sorted(json.loads((source / "categories.json").read_text()))
    folder = root / "banking77"
    folder.mkdir()
    splits = {}
    for split, name, limit in (("train", "train.csv", train_limit), ("test", "test.csv", None)):
        texts, cats = read_csv(source / name, limit)
        splits[split] = dataformat.write_split(folder, split, [pa.table({"text": texts, "label": cats})])
    manifest = dataformat.DatasetManifest(splits=splits, columns=["text", "label"], labels=labels)
    dataformat.write_manifest(folder, manifest)
    return str(hub.push("bench/banking77", folder, "dataset").ref)


def fine_tune(hub: Any, data: str, args: argparse.Namespace) -> tuple[str, float]:
    from fmstack.train.run import train
    from fmstack.train.spec import TrainSpec

    spec = TrainSpec(
        task="classification",
        method="full",
        base="fmstack/minilm-l6",
        data=data,
        eval_split="test",
        output="bench/minilm-banking77",
        epochs=args.epochs,
        lr=args.lr,
        batch_size=32,
        max_length=64,
        head=args.head,
    )
    start = time.perf_counter()
    result = train(hub, spec)
    return str(result.output.ref), time.perf_counter() - start


def compress_classifier(hub: Any, ref: str, data: str, args: argparse.Namespace) -> dict[str, Any]:
    from fmstack.compress import CompressSpec, compress

    common = {
        "eval_data": data,
        "eval_limit": args.eval_limit,
        "threads": args.threads,
        "latency_runs": args.latency_runs,
        "force": True,
    }
    out: dict[str, Any] = {}
    variants = {"onnx-fp32": {}, "onnx-int8": {"quantize": "int8"}}
    if args.per_tensor:
        variants["onnx-int8-per-tensor"] = {"quantize": "int8", "per_channel": False}
    for name, extra in variants.items():
        start = time.perf_counter()
        result = compress(hub, ref, CompressSpec(output=f"bench/minilm-banking77-{name}", **common, **extra))
        print(f"{name}: {time.perf_counter() - start:.0f} s", file=sys.stderr)
        out[name] = result.as_dict()
    return out


def interleaved_latency(hub: Any, parent_ref: str, onnx_ref: str, args: argparse.Namespace) -> dict[str, Any]:
    """Torch fp32 parent vs int8 ONNX child, timed alternately call by call, so both see the same load
    on a shared machine (the report measures one model after the other)."""
    import statistics

    from fmstack.compress.evaluate import latency_texts
    from fmstack.compress.runners import OnnxRunner, TorchRunner, tokenize
    from fmstack.compress.source import load_parent
    from fmstack.servable import read_descriptor

    parent = load_parent(hub, parent_ref)
    folder = hub.checkout(onnx_ref)
    descriptor = read_descriptor(folder)
    assert descriptor is not None
    texts, _ = read_csv(args.data / "test.csv", 64)
    out: dict[str, Any] = {}
    for threads in sorted({1, args.threads}):
        torch.set_num_threads(threads)
        runners = {
            "torch fp32": TorchRunner(parent),
            "onnx int8": OnnxRunner(folder / "model.onnx", descriptor, threads),
        }
        for size in (1, 32):
            batch = tokenize(parent.tokenizer, latency_texts(texts, size), parent.max_length)
            times: dict[str, list[float]] = {name: [] for name in runners}
            for run in runners.values():
                for _ in range(5):  # torch's first forwards at a new shape are ~25x slower
                    run(batch)
            for _ in range(args.latency_runs if size == 1 else max(3, args.latency_runs // 3)):
                for name, run in runners.items():
                    start = time.perf_counter()
                    run(batch)
                    times[name].append((time.perf_counter() - start) * 1000)
            medians = {name: statistics.median(t) for name, t in times.items()}
            out[f"threads{threads}_b{size}"] = {
                "ms": {k: round(v, 2) for k, v in medians.items()},
                "speedup": round(medians["torch fp32"] / medians["onnx int8"], 2),
            }
    torch.set_num_threads(args.threads)
    return out


def embedding_throughput(hub: Any, data: str, args: argparse.Namespace) -> dict[str, Any]:
    """texts/s of ``fmstack/minilm-l6`` as ONNX fp32 and int8 against sentence-transformers fp32 and
    int8 (``quantize_dynamic`` int8 Linear layers, what a PyTorch user reaches for), on the same texts,
    threads and batch size. Every timer covers the same work: tokenise, forward, mean-pool, L2-normalise,
    the whole list handed over at once (sentence-transformers sorts it by length itself; the ONNX side
    sorts it the same way). Each variant first encodes the whole list once untimed (torch's first
    forward at each new shape is slow), then ``--rounds`` rounds time one pass of each, the order
    rotating every round; ratios are taken within a round and reported as median and range."""
    from sentence_transformers import SentenceTransformer

    from fmstack.hub.importers import builtin_model_dir

    sys.path.insert(0, str(Path(__file__).parent))
    from naive_server import int8 as quantize_torch

    texts, _ = read_csv(args.data / "test.csv", args.embedding_texts)
    folders, compressions = onnx_embedders(hub, data, args)
    st = SentenceTransformer(str(builtin_model_dir()), device="cpu")
    st8 = quantize_torch(SentenceTransformer(str(builtin_model_dir()), device="cpu"))
    encoders: dict[str, Callable[[list[str]], np.ndarray]] = {
        "st fp32": lambda items: st_encode(st, items),
        "st int8": lambda items: st_encode(st8, items),
        **{f"onnx {name}": onnx_encoder(folder, args.threads) for name, folder in folders.items()},
    }
    vectors = {name: encode(texts) for name, encode in encoders.items()}  # warm-up: every shape once
    rates: dict[str, list[float]] = {name: [] for name in encoders}
    for r in range(args.rounds):
        names = list(encoders)
        for name in names[r % len(names) :] + names[: r % len(names)]:
            start = time.perf_counter()
            encoders[name](texts)
            rates[name].append(len(texts) / (time.perf_counter() - start))
        print(f"embedding round {r}: load average {os.getloadavg()[0]:.1f}", file=sys.stderr, flush=True)
    ratios = {
        what: [a / b for a, b in zip(rates[ours], rates[theirs], strict=True)]
        for what, ours, theirs in (
            ("fp32 vs fp32", "onnx fp32", "st fp32"),
            ("int8 vs int8", "onnx int8", "st int8"),
            ("int8 vs fp32 (mixed)", "onnx int8", "st fp32"),
        )
    }
    reference = vectors["st fp32"]
    return {
        "texts": len(texts),
        "rounds": args.rounds,
        "texts_per_s": {k: spread(v) for k, v in rates.items()},
        "speedup": {k: spread(v, 2) for k, v in ratios.items()},
        "cosine_to_st_fp32": {
            k: round(float((v * reference).sum(1).mean()), 4) for k, v in vectors.items() if k != "st fp32"
        },
        "load_average": os.getloadavg(),
        "compress": compressions,
    }


def spread(values: list[float], digits: int = 1) -> dict[str, float]:
    return {
        "median": round(statistics.median(values), digits),
        "min": round(min(values), digits),
        "max": round(max(values), digits),
    }


def onnx_embedders(hub: Any, data: str, args: argparse.Namespace) -> tuple[dict[str, Path], dict[str, Any]]:
    """``fmstack/minilm-l6`` compressed to ONNX fp32 (fused) and int8: name -> checked-out folder."""
    from fmstack.compress import CompressSpec, compress

    folders: dict[str, Path] = {}
    results: dict[str, Any] = {}
    for name, extra in (("fp32", {}), ("int8", {"quantize": "int8"})):
        spec = CompressSpec(
            output=f"bench/minilm-embed-{name}",
            eval_data=data,
            eval_limit=500,
            threads=args.threads,
            latency_runs=args.latency_runs,
            force=True,
            **extra,
        )
        result = compress(hub, "fmstack/minilm-l6", spec)
        assert result.version is not None
        folders[name], results[name] = hub.checkout(result.version.ref), result.as_dict()
    return folders, results


def st_encode(model: Any, items: list[str]) -> np.ndarray:
    return np.asarray(model.encode(items, batch_size=32, convert_to_numpy=True, normalize_embeddings=True))


def onnx_encoder(folder: Path, threads: int) -> Callable[[list[str]], np.ndarray]:
    from transformers import AutoTokenizer

    from fmstack.compress.runners import OnnxRunner, tokenize
    from fmstack.servable import read_descriptor

    descriptor = read_descriptor(folder)
    assert descriptor is not None
    runner = OnnxRunner(folder / "model.onnx", descriptor, threads=threads)
    tokenizer = AutoTokenizer.from_pretrained(folder)

    def encode(items: list[str]) -> np.ndarray:
        # length-sorted batches of 32, as sentence-transformers does; results back in input order
        order = sorted(range(len(items)), key=lambda i: len(items[i]))
        out = np.zeros((len(items), 384), dtype=np.float32)
        for start in range(0, len(order), 32):
            idx = order[start : start + 32]
            out[idx] = runner(tokenize(tokenizer, [items[i] for i in idx], descriptor.max_length))
        return out

    return encode


def table(results: dict[str, Any]) -> str:
    rows = classifier_rows(results["classifier"]) if "classifier" in results else []
    for key, value in results.get("interleaved", {}).items():
        threads, size = key.removeprefix("threads").split("_b")
        rows.append(
            (
                f"interleaved latency batch {size}, {threads} thread(s): torch / int8 ONNX",
                f"{value['ms']['torch fp32']:.1f} ms / {value['ms']['onnx int8']:.1f} ms = {value['speedup']:.2f}x",
                ">= 4x" if size == "1" else ">= 1.5x",
            )
        )
    if "embedding" in results:
        emb = results["embedding"]
        for what, value in emb["speedup"].items():
            ours, theirs = (
                ("onnx int8", "st fp32") if "mixed" in what else (f"onnx {what[:4]}", f"st {what[:4]}")
            )
            rows.append(
                (
                    f"embeddings/s, ONNX vs sentence-transformers, {what}",
                    f"{emb['texts_per_s'][ours]['median']:.0f} vs {emb['texts_per_s'][theirs]['median']:.0f}: "
                    f"**{value['median']:.2f}x** ({value['min']:.2f}-{value['max']:.2f} over {emb['rounds']} rounds)",
                    ">= 3x" if "mixed" in what else "",
                )
            )
        cosines = ", ".join(f"{k} {v:.4f}" for k, v in emb["cosine_to_st_fp32"].items())
        rows.append(("cosine to sentence-transformers fp32 vectors", cosines, ""))
    body = "\n".join(f"| {a} | {b} | {c} |" for a, b, c in rows)
    return f"| measure | result | goal |\n| --- | --- | --- |\n{body}\n"


def classifier_rows(classifier: dict[str, Any]) -> list[tuple[str, str, str]]:
    fp32, int8 = classifier["onnx-fp32"], classifier["onnx-int8"]
    report8, report32 = int8["report"], fp32["report"]
    size_vs_onnx = report8["after"]["size_bytes"] / report32["after"]["size_bytes"]
    rows = [
        ("int8 ONNX size vs fp32 ONNX", f"{size_vs_onnx:.3f}x", "<= 0.27x"),
        ("int8 ONNX size vs fp32 safetensors (parent)", f"{int8['size_ratio']:.3f}x", ""),
        ("latency batch 32: torch fp32 / int8 ONNX", f"{int8['speedup_b32']:.2f}x", ">= 1.5x"),
        ("latency batch 1: torch fp32 / int8 ONNX", f"{int8['speedup_b1']:.2f}x", ">= 4x"),
        ("latency batch 32: torch fp32 / fp32 ONNX (fused)", f"{fp32['speedup_b32']:.2f}x", ""),
        ("latency batch 1: torch fp32 / fp32 ONNX (fused)", f"{fp32['speedup_b1']:.2f}x", ""),
        (
            "test accuracy torch fp32 -> int8 ONNX",
            f"{report8['before']['quality']:.2f} -> {report8['after']['quality']:.2f} "
            f"({-report8['drop_points']:+.2f} points)",
            "drop <= 0.5",
        ),
    ]
    if "onnx-int8-per-tensor" in classifier:
        pt = classifier["onnx-int8-per-tensor"]["report"]
        rows.append(
            (
                "test accuracy, int8 per-tensor",
                f"{pt['after']['quality']:.2f} ({-pt['drop_points']:+.2f})",
                "",
            )
        )
    return rows


def run_all(hub: Any, tmp: Path, args: argparse.Namespace, results: dict[str, Any]) -> None:
    from fmstack.errors import NotFound
    from fmstack.hub.importers import import_builtin

    import_builtin(hub)
    try:
        data = str(hub.resolve("bench/banking77").ref)
    except NotFound:
        data = push_banking77(hub, tmp, args.data, args.train_limit)
    if args.embedding_only:  # the base model only: no fine-tuning needed
        results["embedding"] = embedding_throughput(hub, data, args)
        return
    try:
        ref, seconds = str(hub.resolve("bench/minilm-banking77").ref), 0.0
        print(f"reusing {ref} from {hub.settings.home}", file=sys.stderr)
    except NotFound:
        ref, seconds = fine_tune(hub, data, args)
        print(f"fine-tuned {ref} in {seconds:.0f} s", file=sys.stderr)
    results["fine_tune"] = {"ref": ref, "seconds": round(seconds, 1)}
    if args.latency_only:
        int8 = str(hub.resolve("bench/minilm-banking77-onnx-int8").ref)
        results["interleaved"] = interleaved_latency(hub, ref, int8, args)
        return
    results["classifier"] = compress_classifier(hub, ref, data, args)
    results["interleaved"] = interleaved_latency(
        hub, ref, results["classifier"]["onnx-int8"]["version"], args
    )
    if not args.skip_embedding:
        results["embedding"] = embedding_throughput(hub, data, args)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--train-limit", type=int, default=4000, help="training rows used for fine-tuning")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--lr", type=float, default=1.5e-4)
    parser.add_argument("--head", choices=["linear", "cosine"], default="linear", help="classification head")
    parser.add_argument(
        "--eval-limit", type=int, default=1000, help="test rows (a random sample) for accuracy"
    )
    parser.add_argument("--threads", type=int, default=2, help="threads for torch and ONNX Runtime alike")
    parser.add_argument("--latency-runs", type=int, default=30)
    parser.add_argument("--per-tensor", action="store_true", help="also measure per-tensor int8")
    parser.add_argument("--embedding-texts", type=int, default=2000)
    parser.add_argument(
        "--rounds", type=int, default=5, help="timed embedding passes per variant, interleaved"
    )
    parser.add_argument("--skip-embedding", action="store_true")
    parser.add_argument(
        "--embedding-only", action="store_true", help="with --home of an earlier run: only the embedding part"
    )
    parser.add_argument(
        "--latency-only",
        action="store_true",
        help="with --home of an earlier run: only the interleaved latency",
    )
    add_data_flag(parser)
    parser.add_argument("--out", type=Path, help="write the results as JSON here")
    parser.add_argument(
        "--home",
        type=Path,
        help="keep the benchmark hub here (default: a temporary one); a fine-tuned model "
        "already in it is reused instead of training again",
    )
    args = parser.parse_args()
    if problem := missing(args.data):
        print(f"skipped: {problem}", file=sys.stderr)
        return 0
    torch.set_num_threads(args.threads)

    from fmstack.hub import Hub
    from fmstack.settings import Settings

    results: dict[str, Any] = {"args": {k: str(v) for k, v in vars(args).items()}}
    with tempfile.TemporaryDirectory(prefix="fmstack-bench-compress-") as tmp:
        home = args.home or Path(tmp) / "home"
        with Hub(Settings.at(home)) as hub:
            run_all(hub, Path(tmp), args, results)
    print(table(results))
    if args.out:
        args.out.write_text(json.dumps(results, indent=2, default=str) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
