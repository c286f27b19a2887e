"""The recipes on BANKING77 (``fmstack recipe``), each through its real library path on a fresh hub.

    .venv/bin/python bench/recipes.py search      # retrieval: tuned int8 vs un-tuned base vs BM25
    .venv/bin/python bench/recipes.py intents     # the fallback threshold's coverage-vs-accuracy curve
    .venv/bin/python bench/recipes.py sentiment   # balanced class weights vs none on an imbalanced slice

There is no public interaction dataset here, so ``search`` evaluates query -> similar-request
retrieval: the catalog is a seeded stratified sample of BANKING77's train requests (their intent kept
as metadata), the recipe fine-tunes on (request, another request of the same intent) pairs from the
rest of train, and a retrieved request is a hit when it has the query's intent. Queries: a validation
sample carved from train (disjoint from catalog and pairs) and BANKING77's test.csv (reported once).
It also times the index build (flat and HNSW, median of 3) and queries through ``fmstack serve``'s
``POST /v1/search`` (sequential, after a warm-up: p50 / p99) and through the index alone.

``intents`` runs the intents recipe on a stratified train sample with files named train / validation
/ test (validation carved from train, test a stratified sample of BANKING77's test.csv) and prints the validation curve,
the chosen threshold and the test coverage and accuracy at it. ``sentiment`` has no financial
sentiment data to run on here: it takes three BANKING77 intents in a 10:3:1 ratio as a stand-in for
an imbalanced three-class task and runs the sentiment recipe with ``--class-weights balanced`` and
``none`` on the same files (test: those intents' test.csv rows, balanced), for macro-F1.

Sizes are small on purpose (the machine is shared); --help lists them. Every run prints ``uptime``'s
load. BANKING77 comes from --data DIR (default ``<repo>/../shared/datasets/banking77``); the script
skips with a message when it is absent.
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
from collections import defaultdict
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))
from banking77 import add_data_flag, missing


def load(path: Path) -> list[tuple[str, str]]:
    with path.open(newline="") as f:
        return [(r["text"], r["category"]) for r in csv.DictReader(f)]


def stratified(rows: list[tuple[str, str]], per_label: int, rng: random.Random) -> tuple[list, list]:
    """(picked, rest): ``per_label`` rows of each label, drawn at random."""
    by_label: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for row in rows:
        by_label[row[1]].append(row)
    picked, rest = [], []
    for label in sorted(by_label):
        group = by_label[label][:]
        rng.shuffle(group)
        picked += group[:per_label]
        rest += group[per_label:]
    return picked, rest


def write(path: Path, header: list[str], rows: list[Any]) -> Path:
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def load_average() -> str:
    return " ".join(f"{x:.1f}" for x in os.getloadavg())


def say(step: str, seconds: float | None) -> None:
    print(f"  {step}: {'...' if seconds is None else f'{seconds:.1f} s'} (load {load_average()})", flush=True)


# -- search ------------------------------------------------------------------------------------------


def search(args: argparse.Namespace, hub: Any, root: Path) -> dict[str, Any]:
    import bm25s

    from fmstack.recipes import search as recipe
    from fmstack.recipes.ranking import ndcg_at_k, recall_at_k
    from fmstack.serve.loader import load_runtime
    from fmstack.serve.vector_index import SEARCH_DIR, VectorIndex, write_index

    rng = random.Random(args.seed)
    train = load(args.data / "train.csv")
    test = load(args.data / "test.csv")
    catalog, rest = stratified(train, args.catalog_per_intent, rng)
    validation, rest = stratified(rest, args.validation_per_intent, rng)
    by_label: dict[str, list[str]] = defaultdict(list)
    for text, label in rest:
        by_label[label].append(text)
    pairs = []
    for text, label in rest:  # each request with another request of its intent: its positive
        others = [t for t in by_label[label] if t != text]
        if others:
            pairs.append([text, rng.choice(others)])
    rng.shuffle(pairs)
    pairs = pairs[: args.pairs]
    cut = max(1, len(pairs) // 10)
    folder = root / "pairs"
    folder.mkdir()
    files = [
        write(folder / f"{split}.csv", ["query", "item"], rows)
        for split, rows in (
            ("train", pairs[2 * cut :]),
            ("validation", pairs[:cut]),
            ("test", pairs[cut : 2 * cut]),
        )
    ]
    items = write(
        root / "catalog.csv", ["id", "text", "intent"], [[i, t, c] for i, (t, c) in enumerate(catalog)]
    )
    spec = recipe.Spec(
        data=[str(f) for f in files],
        items=str(items),
        item_id_column="id",
        output="bench/b77-search",
        epochs=args.epochs,
        batch_size=args.batch_size,
        max_length=64,
    )
    start = time.perf_counter()
    result = recipe.run(hub, spec, say)
    recipe_s = time.perf_counter() - start

    catalog_texts, catalog_labels = [t for t, _ in catalog], [c for _, c in catalog]
    queries = {"validation": validation, "test": test}
    relevant = {
        name: [{i for i, c in enumerate(catalog_labels) if c == label} for _, label in rows]
        for name, rows in queries.items()
    }
    scores: dict[str, dict[str, float]] = {}

    def score(name: str, ranked: dict[str, list[list[int]]]) -> None:
        for split in queries:
            scores[f"{name} {split}"] = {
                "recall@10": recall_at_k(ranked[split], relevant[split], 10),
                "ndcg@10": ndcg_at_k(ranked[split], relevant[split], 10),
            }

    # BM25 (bm25s, its default Lucene variant, English stop words)
    retriever = bm25s.BM25()
    retriever.index(bm25s.tokenize(catalog_texts, stopwords="en", show_progress=False), show_progress=False)
    ranked_bm25 = {}
    for split, rows in queries.items():
        hits, _ = retriever.retrieve(
            bm25s.tokenize([t for t, _ in rows], stopwords="en", show_progress=False),
            k=10,
            show_progress=False,
        )
        ranked_bm25[split] = hits.tolist()
    score("BM25", ranked_bm25)
    for name, ref in (
        ("base (un-tuned MiniLM, fp32)", result.versions["base"].ref),
        ("tuned int8 (served)", result.versions["production"].ref),
    ):
        _, runtime = load_runtime(hub, ref, None)
        from fmstack.recipes.scoring import forward_texts

        item_vectors = forward_texts(runtime, catalog_texts)
        score(
            name,
            {
                split: recipe.top_k(forward_texts(runtime, [t for t, _ in rows]), item_vectors, 10)
                for split, rows in queries.items()
            },
        )
        runtime.close()

    # index build and query latency on the served version's vectors
    served = hub.checkout(result.versions["production"].ref)
    index = VectorIndex(served / SEARCH_DIR)
    vectors = index._index.reconstruct_n(0, index._index.ntotal)
    build: dict[str, list[float]] = {"flat": [], "hnsw": []}
    for _ in range(3):
        for kind in build:
            out = root / f"index-{kind}"
            t0 = time.perf_counter()
            write_index(out, vectors, index.items, kind)  # type: ignore[arg-type]
            build[kind].append(time.perf_counter() - t0)
    query_vectors = vectors[:200]
    index_ms = []
    for v in query_vectors:
        t0 = time.perf_counter()
        index.search(v[None, :], 10)
        index_ms.append((time.perf_counter() - t0) * 1000)
    http_ms = http_latency(
        hub, result.versions["production"].repo + "@production", [t for t, _ in test[: args.latency_queries]]
    )
    return {
        "sizes": {
            "catalog": len(catalog),
            "pairs": len(pairs),
            "validation_queries": len(validation),
            "test_queries": len(test),
        },
        "recipe_seconds": recipe_s,
        "recipe_steps": result.seconds,
        "recipe_metrics": result.metrics,
        "retrieval": scores,
        "index_build_s": {
            k: {"median": statistics.median(v), "min": min(v), "max": max(v)} for k, v in build.items()
        },
        "index_query_ms": percentiles(index_ms),
        "http_search_ms": percentiles(http_ms),
    }


def percentiles(ms: list[float]) -> dict[str, float]:
    ordered = sorted(ms)
    return {
        "p50": statistics.median(ordered),
        "p99": ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))],
        "n": len(ordered),
    }


def http_latency(hub: Any, ref: str, texts: list[str]) -> list[float]:
    import httpx

    from fmstack.serve import ServeSettings, start_server

    settings = ServeSettings(models=[ref], port=0, poll_aliases_s=0)
    out = []
    with (
        start_server(settings, hub.settings) as server,
        httpx.Client(base_url=server.url, timeout=60) as client,
    ):
        for text in texts[:20]:  # warm-up
            client.post("/v1/search", json={"model": ref, "query": text}).raise_for_status()
        for text in texts:
            t0 = time.perf_counter()
            client.post("/v1/search", json={"model": ref, "query": text, "top_k": 10}).raise_for_status()
            out.append((time.perf_counter() - t0) * 1000)
    return out


# -- intents -----------------------------------------------------------------------------------------


def intents(args: argparse.Namespace, hub: Any, root: Path) -> dict[str, Any]:
    from fmstack.recipes import intents as recipe

    rng = random.Random(args.seed)
    train, rest = stratified(load(args.data / "train.csv"), args.train_per_intent, rng)
    validation, _ = stratified(rest, args.validation_per_intent, rng)
    test, _ = stratified(load(args.data / "test.csv"), args.test_per_intent, rng)
    folder = root / "intents"
    folder.mkdir()
    files = [
        write(folder / f"{split}.csv", ["text", "intent"], rows)
        for split, rows in (
            ("train", train),
            ("validation", validation),
            ("test", test),
        )
    ]
    spec = recipe.Spec(
        data=[str(f) for f in files],
        label_column="intent",
        output="bench/b77-intents",
        method=args.method,
        epochs=args.epochs,
        target_accuracy=args.target_accuracy,
    )
    start = time.perf_counter()
    result = recipe.run(hub, spec, say)
    return {
        "sizes": {"train": len(train), "validation": len(validation), "test": len(test)},
        "recipe_seconds": time.perf_counter() - start,
        "steps": result.seconds,
        "metrics": result.metrics,
        "validation_curve": result.tables["validation_curve"],
        "notes": result.notes,
    }


# -- sentiment ---------------------------------------------------------------------------------------

STAND_IN = {"card_arrival": 10, "card_delivery_estimate": 3, "lost_or_stolen_card": 1}


def sentiment(args: argparse.Namespace, hub: Any, root: Path) -> dict[str, Any]:
    from fmstack.recipes import sentiment as recipe

    rng = random.Random(args.seed)
    train = [r for r in load(args.data / "train.csv") if r[1] in STAND_IN]
    test = [r for r in load(args.data / "test.csv") if r[1] in STAND_IN]
    by_label: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for row in train:
        by_label[row[1]].append(row)
    picked, validation = [], []
    for label, weight in STAND_IN.items():
        group = by_label[label][:]
        rng.shuffle(group)
        validation += group[: 2 * weight]  # validation keeps the train ratio too
        picked += group[2 * weight : 2 * weight + weight * args.rows_per_weight]
    folder = root / "sentiment"
    folder.mkdir()
    files = [
        write(folder / f"{split}.csv", ["text", "label"], rows)
        for split, rows in (("train", picked), ("validation", validation), ("test", test))
    ]
    out: dict[str, Any] = {
        "sizes": {"train": {k: w * args.rows_per_weight for k, w in STAND_IN.items()}, "test": len(test)}
    }
    for weights in ("balanced", "none"):
        spec = recipe.Spec(
            data=[str(f) for f in files],
            output=f"bench/b77-sentiment-{weights}",
            class_weights=weights,  # type: ignore[arg-type]
            method=args.method,
            epochs=args.epochs,
        )
        start = time.perf_counter()
        result = recipe.run(hub, spec, say)
        out[weights] = {
            "seconds": time.perf_counter() - start,
            "metrics": result.metrics,
            "per_class": result.tables["test_per_class"],
        }
    return out


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("recipe", choices=["search", "intents", "sentiment"])
    add_data_flag(parser)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--epochs", type=int, default=1, help="training epochs (default 1)")
    parser.add_argument(
        "--method",
        default="probe",
        help="intents/sentiment: fine-tuning method (default probe: the encoder runs once)",
    )
    parser.add_argument("--batch-size", type=int, default=32, help="search: pairs per batch")
    parser.add_argument(
        "--catalog-per-intent", type=int, default=30, help="search: catalog requests per intent"
    )
    parser.add_argument("--validation-per-intent", type=int, default=5, help="validation requests per intent")
    parser.add_argument(
        "--pairs",
        type=int,
        default=1200,
        help="search: training pairs (a tenth each for validation and test)",
    )
    parser.add_argument(
        "--latency-queries", type=int, default=200, help="search: sequential /v1/search requests timed"
    )
    parser.add_argument(
        "--test-per-intent",
        type=int,
        default=13,
        help="intents: test.csv requests per intent (a stratified sample)",
    )
    parser.add_argument("--train-per-intent", type=int, default=10, help="intents: train requests per intent")
    parser.add_argument(
        "--target-accuracy", type=float, default=0.95, help="intents: accuracy wanted on answered requests"
    )
    parser.add_argument(
        "--rows-per-weight", type=int, default=12, help="sentiment: train rows per unit of the 10:3:1 ratio"
    )
    parser.add_argument(
        "--threads", type=int, default=1, help="torch threads (default 1: the machine is shared)"
    )
    parser.add_argument("--out", type=Path, help="write the numbers as JSON here")
    args = parser.parse_args()
    why = missing(args.data)
    if why is not None:
        print(f"skipped: {why}")
        return 0
    import torch

    from fmstack.hub import Hub
    from fmstack.settings import Settings

    torch.set_num_threads(args.threads)
    print(f"bench/recipes.py {args.recipe}: load average {load_average()} at the start", flush=True)
    with (
        tempfile.TemporaryDirectory(prefix="bench-recipes-") as tmp,
        Hub(Settings.at(Path(tmp) / "home")) as hub,
    ):
        numbers = {"search": search, "intents": intents, "sentiment": sentiment}[args.recipe](
            args, hub, Path(tmp)
        )
    numbers["load_average_end"] = load_average()
    text = json.dumps(numbers, indent=2, default=str)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
