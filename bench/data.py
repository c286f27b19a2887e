"""Data processing throughput: fmstack's pipeline vs Hugging Face `datasets` `.map(batched=True)`.

The same four ops on the same rows in the same run: NFKC normalise + whitespace + lowercase,
exact dedup (hash of the normalised text, first occurrence kept), near dedup (datasketch MinHash,
128 permutations, word 3-grams, threshold 0.8) and tokenisation with the built-in MiniLM fast
tokenizer (max_length 128). Reported as input rows per second and as the ratio fmstack / datasets
(goal >= 2x); fmstack runs on the `local` executor and on `ray`, datasets with the same number of
processes (`num_proc`). Inputs: generated rows with exact and near duplicates (default 1M rows),
and BANKING77 (train + test) from --data DIR (default ``<repo>/../shared/datasets/banking77``) when
present.

    .venv/bin/python bench/data.py [--rows 1000000] [--workers 2] [--no-ray] [--data DIR]

The datasets baseline does what a datasets user would write: batched maps for normalise, hashes,
MinHash signatures and tokens; a global pass for exact dedup (a set of hashes); and for near dedup
datasketch's `MinHashLSH` (query, then insert when no candidate) on the driver.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import tempfile
import time
import unicodedata
from pathlib import Path
from typing import Any

import datasets
import numpy as np
import pyarrow as pa
from datasketch import MinHash, MinHashLSH
from tokenizers import Tokenizer

from banking77 import add_data_flag, missing
from fmstack.data.format import DatasetManifest, read_split, write_manifest, write_split
from fmstack.data.ingest import IngestSpec, ingest
from fmstack.data.ops.dedup_exact import text_keys
from fmstack.data.ops.dedup_near import shingles
from fmstack.data.pipeline import process
from fmstack.data.spec import parse_spec
from fmstack.hub import Hub
from fmstack.hub.importers import import_builtin
from fmstack.settings import Settings

WORDS = [
    "card",
    "payment",
    "transfer",
    "money",
    "account",
    "balance",
    "refund",
    "help",
    "please",
    "my",
    "the",
    "is",
    "not",
    "working",
    "why",
    "when",
    "can",
    "you",
    "tell",
    "me",
    "how",
    "long",
    "does",
    "it",
    "take",
    "to",
    "arrive",
    "cash",
    "atm",
    "withdraw",
    "fee",
    "charge",
    "declined",
    "pending",
    "top",
    "up",
    "exchange",
    "rate",
    "currency",
    "verify",
    "identity",
    "pin",
    "blocked",
    "lost",
    "stolen",
    "phone",
    "app",
]
NUM_PERM, NGRAM, THRESHOLD, MAX_LENGTH = 128, 3, 0.8, 128
OPS = [
    {"op": "normalize", "lowercase": True},
    {"op": "dedup_exact"},
    {"op": "dedup_near", "threshold": THRESHOLD, "num_perm": NUM_PERM, "ngram": NGRAM},
    {"op": "tokenize", "model": "fmstack/minilm-l6", "max_length": MAX_LENGTH},
]
_SPACE = re.compile(r"\s+")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")


def generate(rows: int, seed: int = 0) -> list[str]:
    """Support-style sentences; ~10% exact duplicates (case/space changed), ~10% near duplicates."""
    rng = random.Random(seed)
    out: list[str] = []
    while len(out) < rows:
        text = " ".join(rng.choice(WORDS) for _ in range(rng.randint(8, 30)))
        out.append(text)
        r = rng.random()
        if r < 0.1:
            out.append("  " + text.upper())
        elif r < 0.2:
            out.append(text + " " + rng.choice(WORDS))
    return out[:rows]


def store_raw(hub: Hub, name: str, texts: list[str], shard_rows: int = 50_000) -> str:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        tables = (pa.table({"text": texts[i : i + shard_rows]}) for i in range(0, len(texts), shard_rows))
        info = write_split(folder, "train", tables)
        write_manifest(folder, DatasetManifest(splits={"train": info}, columns=["text"]))
        return hub.push(name, folder, "dataset").ref


# -- the datasets baseline (module-level functions so num_proc can pickle them) ----------------------


def hf_normalize(batch: dict[str, list[str]]) -> dict[str, list[str]]:
    out = []
    for text in batch["text"]:
        text = _CONTROL.sub("", unicodedata.normalize("NFKC", text))
        out.append(_SPACE.sub(" ", text).strip().lower())
    return {"text": out}


def hf_hash(batch: dict[str, list[str]]) -> dict[str, list[int]]:
    keys = text_keys(pa.table({"text": batch["text"]}), normalize=True)
    return {"hash": keys.astype(np.int64).tolist()}  # the same hash as fmstack, so results match


def hf_minhash(batch: dict[str, list[str]]) -> dict[str, list[list[int]]]:
    sets = [shingles(t, NGRAM, "word") for t in batch["text"]]
    return {"minhash": [m.hashvalues.tolist() for m in MinHash.generator(sets, num_perm=NUM_PERM, seed=1)]}


_TOKENIZER: Tokenizer | None = None
_TOKENIZER_PATH = ""


def hf_tokenize(batch: dict[str, list[str]]) -> dict[str, list[list[int]]]:
    global _TOKENIZER
    if _TOKENIZER is None:
        _TOKENIZER = Tokenizer.from_file(_TOKENIZER_PATH)
        _TOKENIZER.no_padding()
        _TOKENIZER.enable_truncation(MAX_LENGTH)
    encodings = _TOKENIZER.encode_batch(batch["text"])
    return {"input_ids": [e.ids for e in encodings], "attention_mask": [e.attention_mask for e in encodings]}


def run_datasets(texts: list[str], tokenizer_path: str, workers: int) -> tuple[float, int]:
    global _TOKENIZER_PATH
    _TOKENIZER_PATH = tokenizer_path
    datasets.disable_caching()
    datasets.disable_progress_bars()
    start = time.perf_counter()
    ds = datasets.Dataset.from_dict({"text": texts})
    procs = workers if workers > 1 else None
    ds = ds.map(hf_normalize, batched=True, num_proc=procs)
    ds = ds.map(hf_hash, batched=True, num_proc=procs)
    seen: set[int] = set()
    keep = []
    for h in ds["hash"]:
        keep.append(h not in seen)
        seen.add(h)
    ds = ds.select(np.flatnonzero(keep)).remove_columns("hash")
    ds = ds.map(hf_minhash, batched=True, num_proc=procs)
    lsh = MinHashLSH(threshold=THRESHOLD, num_perm=NUM_PERM)
    keep = []
    for i, values in enumerate(ds["minhash"]):
        m = MinHash(num_perm=NUM_PERM, hashvalues=np.asarray(values, dtype=np.uint32), scheme="affine32")
        dup = bool(lsh.query(m))
        if not dup:
            lsh.insert(i, m)
        keep.append(not dup)
    ds = ds.select(np.flatnonzero(keep)).remove_columns("minhash")
    ds = ds.map(hf_tokenize, batched=True, num_proc=procs)
    rows_out = ds.num_rows
    return time.perf_counter() - start, rows_out


def run_fmstack(hub: Hub, raw: str, executor: str, workers: int) -> tuple[float, int]:
    spec = parse_spec({"input": raw, "output": f"bench/out-{executor}", "ops": OPS})
    start = time.perf_counter()
    result = process(hub, spec, executor=executor, workers=workers)
    return time.perf_counter() - start, sum(result.rows.values())


def bench(hub: Hub, label: str, raw: str, texts: list[str], args: argparse.Namespace) -> dict[str, Any]:
    tokenizer = str(hub.checkout("fmstack/minilm-l6") / "tokenizer.json")
    n = len(texts)
    row: dict[str, Any] = {"input": label, "rows": n}
    t, out = run_datasets(texts, tokenizer, args.workers)
    row["datasets"] = {"seconds": round(t, 2), "rows_per_s": round(n / t), "rows_out": out}
    for executor in ["local"] + ([] if args.no_ray else ["ray"]):
        t, out = run_fmstack(hub, raw, executor, args.workers)
        row[executor] = {"seconds": round(t, 2), "rows_per_s": round(n / t), "rows_out": out}
        row[f"{executor}_vs_datasets"] = round(row["datasets"]["seconds"] / t, 2)
        hub_rows = row[executor]["rows_out"]
        row[f"{executor}_rows_match"] = hub_rows == row["datasets"]["rows_out"]
    print(json.dumps(row), flush=True)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--no-ray", action="store_true")
    add_data_flag(parser, "--banking77")
    args = parser.parse_args()
    results = []
    with (
        tempfile.TemporaryDirectory(prefix="fmstack-bench-data-") as home,
        Hub(Settings.at(Path(home))) as hub,
    ):
        import_builtin(hub)
        texts = generate(args.rows)
        results.append(
            bench(hub, f"generated {args.rows:,} rows", store_raw(hub, "bench/generated", texts), texts, args)
        )
        banking = args.data
        if (problem := missing(banking)) is None:
            spec = IngestSpec(
                name="bench/banking77", paths=[str(banking / "train.csv"), str(banking / "test.csv")]
            )
            ref = ingest(hub, spec).published.version.ref
            folder = hub.checkout(ref)
            texts = [t for s in ("train", "test") for t in read_split(folder, s).column("text").to_pylist()]
            raw = store_raw(hub, "bench/banking77-text", texts)
            results.append(bench(hub, "banking77 train+test", raw, texts, args))
        else:
            print(f"banking77 skipped: {problem}", flush=True)
    print(
        "\n| input | rows | datasets rows/s | local rows/s | local / datasets | ray rows/s | ray / datasets |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for r in results:
        ray = r.get("ray", {})
        print(
            f"| {r['input']} | {r['rows']:,} | {r['datasets']['rows_per_s']:,} | {r['local']['rows_per_s']:,} | "
            f"{r['local_vs_datasets']}x | {ray.get('rows_per_s', '-')} | {r.get('ray_vs_datasets', '-')}x |"
        )


if __name__ == "__main__":
    main()
