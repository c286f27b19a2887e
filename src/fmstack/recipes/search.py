"""``fmstack recipe search``: recommendation as embedding retrieval, from (query, item) pairs.

ingest the pairs (query -> ``text``, item -> ``text_pair``) -> process (normalise, deduplicate,
split 70/10/20 unless the files are named train/validation/test) -> fine-tune the embedding task
(in-batch negatives: every other pair's item in a batch is a negative) -> compress (int8, gated on
cosine similarity to the fine-tuned model on validation) -> embed the catalog with the int8 model and
build a faiss index -> publish model + index as one version (lineage: the int8 model and the data),
alias ``production``, which ``fmstack serve`` answers on ``POST /v1/search``.

Evaluation: each test query's own item must come back (recall@10, nDCG@10 over the whole catalog),
for the served int8 model and for the un-tuned base, in one run.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import numpy as np
import pyarrow as pa
from numpy.typing import NDArray
from pydantic import BaseModel, ConfigDict, Field

from fmstack.data import format as dataformat
from fmstack.data.ingest import IngestSpec
from fmstack.hub import HubApi
from fmstack.hub.importers import BUILTIN_REPO
from fmstack.recipes import steps
from fmstack.recipes.catalog import items_from_pairs, read_items
from fmstack.recipes.ranking import ndcg_at_k, recall_at_k
from fmstack.recipes.result import RecipeResult, Say
from fmstack.recipes.scoring import forward_texts
from fmstack.serve.loader import load_runtime
from fmstack.serve.vector_index import IndexKind, write_index
from fmstack.train.spec import MethodName, TrainSpec

K = 10


class Spec(BaseModel):
    """The search recipe's fields; the field docs are ``fmstack recipe search --help``."""

    model_config = ConfigDict(extra="forbid")
    schema_version: Literal[1] = 1
    data: list[str] = Field(
        description="(query, item) pairs that belong together: a search and what was clicked, a user's "
        "history and the next item. One file (split here 70/10/20) or files named train/validation/test."
    )
    query_column: str = Field("query", description="Column of the pairs holding the query (or history).")
    item_column: str = Field("item", description="Column of the pairs holding the item's text.")
    items: str | None = Field(
        None,
        description="Catalog file to index (CSV, TSV, JSONL, Parquet): one row per item, its other "
        "columns kept as metadata for filters (default: the distinct items of the pairs).",
    )
    item_id_column: str | None = Field(None, description="Catalog column of item ids (default: row numbers).")
    item_text_column: str = Field("text", description="Catalog column of item texts.")
    output: str = Field("recipes/search", description="NS/NAME of the served search version (model + index).")
    base: str = Field(
        BUILTIN_REPO, description="Base embedding model (the built-in MiniLM is imported when absent)."
    )
    method: MethodName = Field("full", description="Fine-tuning method (see fmstack train finetune --help).")
    epochs: int = Field(1, ge=1, description="Training epochs.")
    lr: float | None = Field(None, gt=0, description="Peak learning rate (default: the method's).")
    batch_size: int = Field(
        32, ge=2, description="Pairs per batch: each pair's item is a negative for the others."
    )
    temperature: float = Field(0.05, gt=0, description="Softmax temperature of the contrastive loss.")
    max_length: int = Field(64, ge=8, description="Longest text in tokens (longer ones are cut).")
    index: IndexKind = Field(
        "flat", description="flat: exact search (up to ~100k items); hnsw: approximate, for larger catalogs."
    )
    max_accuracy_drop: float = Field(
        2.0,
        ge=0,
        description="Refuse the int8 model when its cosine to the fine-tuned one drops more than this many points.",
    )
    seed: int = Field(0, description="Seed of the split and of training.")


def run(hub: HubApi, spec: Spec, say: Say) -> RecipeResult:
    result = RecipeResult("search")
    out = spec.output
    steps.check_files(spec.data + ([spec.items] if spec.items else []))  # before any work
    base = steps.timed(result, "find the base model", say, lambda: steps.base_model(hub, spec.base))
    result.versions["base"] = base
    ingest_spec = IngestSpec(
        name=f"{out}-raw", paths=spec.data, pair_columns=(spec.query_column, spec.item_column)
    )
    raw, data = steps.timed(
        result,
        "ingest and process the pairs: normalise, deduplicate, split",
        say,
        lambda: steps.ingest_and_process(hub, ingest_spec, f"{out}-data", spec.seed),
    )
    result.versions["raw"], result.versions["data"] = raw, data
    train_spec = TrainSpec(
        base=base.ref,
        data=data.ref,
        task="embedding",
        method=spec.method,
        epochs=spec.epochs,
        lr=spec.lr,
        batch_size=spec.batch_size,
        temperature=spec.temperature,
        max_length=spec.max_length,
        output=f"{out}-{spec.method}",
        seed=spec.seed,
    )
    trained = steps.timed(
        result,
        f"fine-tune embeddings ({spec.method}, in-batch negatives)",
        say,
        lambda: steps.train_model(hub, train_spec),
    )
    result.versions["trained"] = trained
    compressed = steps.timed(
        result,
        "compress: ONNX, int8, gated on validation",
        say,
        lambda: steps.compress_int8(hub, trained.ref, data.ref, spec.max_accuracy_drop, f"{out}-onnx"),
    )
    result.versions["compressed"] = compressed
    data_dir = hub.checkout(data.ref)
    items = _catalog(spec, data_dir)
    vectors = steps.timed(
        result,
        f"embed the catalog ({items.num_rows} items) with the int8 model",
        say,
        lambda: _embed(hub, compressed.ref, [str(t) for t in items.column("text").to_pylist()]),
    )
    test = dataformat.read_split(data_dir, "test")
    steps.timed(
        result,
        "evaluate on the test pairs: int8 model vs the un-tuned base",
        say,
        lambda: _evaluate(hub, result, base.ref, compressed.ref, items, vectors, test),
    )

    def add_index(folder: Path) -> dict[str, float]:
        write_index(folder, vectors, items, spec.index)
        return {k: float(v) for k, v in result.metrics.items() if isinstance(v, int | float)}

    index_spec = {"index": spec.index, "items": spec.items or "the pairs' items", "count": items.num_rows}
    final = steps.timed(
        result,
        f"build the {spec.index} index and publish it with its model, alias production",
        say,
        lambda: steps.publish_derived(
            hub, compressed, out, "index", index_spec, [compressed.ref, data.ref], add_index
        ),
    )
    result.versions["served"] = final
    result.versions["production"] = hub.tag(final.ref, "production")
    result.serve = f"fmstack serve {out}@production"
    return result


def _catalog(spec: Spec, data_dir: Path) -> pa.Table:
    if spec.items is not None:
        return read_items(Path(spec.items), spec.item_id_column, spec.item_text_column)
    manifest = dataformat.read_manifest(data_dir)
    texts = [
        str(t)
        for split in manifest.splits
        for t in dataformat.read_split(data_dir, split).column("text_pair").to_pylist()
    ]
    return items_from_pairs(texts)


def _embed(hub: HubApi, ref: str, texts: list[str]) -> NDArray[np.float32]:
    _, runtime = load_runtime(hub, ref, None)
    try:
        return forward_texts(runtime, texts)
    finally:
        runtime.close()


def top_k(queries: NDArray[np.float32], items: NDArray[np.float32], k: int) -> list[list[int]]:
    """Item rows of the k highest inner products per query, best first (exact: what a flat index returns)."""
    scores = queries @ items.T  # (queries, items)
    k = min(k, items.shape[0])
    best = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    order = np.take_along_axis(scores, best, axis=1).argsort(axis=1)[:, ::-1]
    ranked: list[list[int]] = np.take_along_axis(best, order, axis=1).tolist()
    return ranked


def _evaluate(
    hub: HubApi,
    result: RecipeResult,
    base_ref: str,
    served_ref: str,
    items: pa.Table,
    vectors: NDArray[np.float32],
    test: pa.Table,
) -> None:
    rows: dict[str, set[int]] = {}
    for i, text in enumerate(items.column("text").to_pylist()):
        rows.setdefault(str(text), set()).add(i)
    queries = [str(t) for t in test.column("text").to_pylist()]
    relevant = [rows.get(str(t), set()) for t in test.column("text_pair").to_pylist()]
    missing = sum(not r for r in relevant)
    if missing == len(relevant):  # a catalog of other texts than the pairs' items: nothing to score
        result.notes.append(
            "recall@10 and nDCG@10 not measured: no test pair's item text is in the catalog (--items)"
        )
        return
    if missing:
        result.notes.append(
            f"{missing} of {len(relevant)} test pairs name an item not in the catalog; not scored"
        )
    item_texts = [str(t) for t in items.column("text").to_pylist()]
    for name, ref, item_vectors in (("base", base_ref, None), ("tuned_int8", served_ref, vectors)):
        item_vectors = item_vectors if item_vectors is not None else _embed(hub, ref, item_texts)
        ranked = top_k(_embed(hub, ref, queries), item_vectors, K)
        result.metrics[f"test_{name}_recall@{K}"] = recall_at_k(ranked, relevant, K)
        result.metrics[f"test_{name}_ndcg@{K}"] = ndcg_at_k(ranked, relevant, K)
    result.metrics["test_queries"] = len(relevant) - missing
