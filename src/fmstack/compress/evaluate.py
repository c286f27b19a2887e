"""Measurements for the report: quality on eval texts, latency at a batch size, file size.

Quality is accuracy (classifiers, in percent) or the mean cosine similarity of each text's
embedding to the parent's embedding of the same text (embedding models, in percent; the parent
scores 100 by definition). Both are in points, so one ``--max-accuracy-drop`` gates either task.

``--eval-limit`` takes a seeded random sample of the split, stratified by label when it has labels:
the first N rows of a split are often one source or one class (files are written in order).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fmstack.compress.runners import Batch, Runner, tokenize
from fmstack.data.format import read_manifest, read_split
from fmstack.errors import InvalidInput, NotFound, Unsupported
from fmstack.hub import HubApi

# Texts for latency when no eval data is given: short, mid and long requests.
FALLBACK_TEXTS = [
    "I still have not received my new card.",
    "How long does a transfer to another country take, and is there a fee for it?",
    "My payment was declined at the shop this morning even though my balance is fine; what went wrong?",
    "Can I change my PIN?",
]


WARMUP_CALLS = 5
EVAL_SAMPLE_SEED = 0  # fixed: the same model, data and limit are always measured on the same rows


@dataclass
class EvalData:
    ref: str
    split: str
    texts: list[str]
    labels: list[int] | None  # model label ids, for classifiers


def pick_split(splits: list[str], wanted: str | None, ref: str) -> str:
    if wanted is not None:
        if wanted not in splits:
            raise NotFound(f"{ref} has no split {wanted!r} (splits: {', '.join(splits) or 'none'})")
        return wanted
    for name in ("test", "validation", "train"):
        if name in splits:
            return name
    raise InvalidInput(
        f"{ref} has no test, validation or train split (splits: {', '.join(splits) or 'none'})"
    )


def load_eval(
    hub: HubApi, ref: str, split: str | None, limit: int, model_labels: list[str] | None
) -> EvalData:
    """Texts (and, for a classifier, label ids in the model's own numbering) of a dataset version."""
    version = hub.resolve(ref)
    if version.kind != "dataset":
        raise InvalidInput(f"--eval-data {version.ref} is a {version.kind} version; give a dataset version")
    folder = hub.checkout(version.ref)
    manifest = read_manifest(folder)
    name = pick_split(list(manifest.splits), split, version.ref)
    table = read_split(folder, name)
    strata = table.column("label").to_pylist() if "label" in table.column_names else None
    table = table.take(sample_rows(table.num_rows, limit, strata, EVAL_SAMPLE_SEED))
    if "text" not in table.column_names:
        raise InvalidInput(
            f"{version.ref}:{name} has no 'text' column (columns: {', '.join(table.column_names)})"
        )
    texts = [str(t) for t in table.column("text").to_pylist()]
    if not texts:
        raise InvalidInput(f"{version.ref} split {name!r} is empty; nothing to evaluate on")
    if model_labels is None:
        return EvalData(version.ref, name, texts, None)
    if manifest.multi_label:
        raise Unsupported(f"{version.ref} is multi-label; accuracy gating supports single-label data")
    if "label" not in table.column_names:
        raise InvalidInput(
            f"{version.ref}:{name} has no 'label' column; a classifier needs labelled eval data"
        )
    index = {label: i for i, label in enumerate(model_labels)}
    raw = [str(v) for v in table.column("label").to_pylist()]
    unknown = sorted(set(raw) - set(index))
    if unknown:
        raise InvalidInput(
            f"{version.ref} has labels the model does not know: {', '.join(unknown[:5])}"
            f"{' ...' if len(unknown) > 5 else ''} (model labels: {', '.join(model_labels[:8])}...); "
            "evaluate on data labelled like the training data"
        )
    return EvalData(version.ref, name, texts, [index[v] for v in raw])


def sample_rows(rows: int, limit: int, strata: list[object] | None, seed: int) -> np.ndarray:
    """Sorted indices of ``limit`` of ``rows`` rows drawn with ``seed`` (all of them when they fit).

    With ``strata`` (one label per row) each label keeps its share: ``limit * count / rows`` rows,
    rounded by largest remainder, so a 1,000-row sample of skewed data has the split's class mix.
    """
    if rows <= limit:
        return np.arange(rows)
    rng = np.random.default_rng(seed)
    if strata is None:
        return np.sort(rng.choice(rows, size=limit, replace=False))
    keys = np.array([str(v) for v in strata])
    _, codes, counts = np.unique(keys, return_inverse=True, return_counts=True)
    quota = counts * limit / rows
    take = np.floor(quota).astype(np.int64)
    # Hand the rows lost to rounding down to the labels with the largest remainders (ties: label order).
    take[np.argsort(take - quota, kind="stable")[: limit - int(take.sum())]] += 1
    chosen = [rng.choice(np.flatnonzero(codes == c), size=int(k), replace=False) for c, k in enumerate(take)]
    return np.sort(np.concatenate(chosen))


def batches(tokenizer: object, texts: list[str], max_length: int, size: int) -> list[Batch]:
    return [tokenize(tokenizer, texts[i : i + size], max_length) for i in range(0, len(texts), size)]


def predict(runner: Runner, prepared: list[Batch]) -> np.ndarray:
    return np.concatenate([runner(b) for b in prepared], axis=0)


def accuracy_points(logits: np.ndarray, labels: list[int]) -> float:
    return float((logits.argmax(axis=1) == np.asarray(labels)).mean() * 100.0)


def cosine_points(vectors: np.ndarray, reference: np.ndarray) -> float:
    """Mean cosine similarity of matching rows, in percent."""
    a = vectors / np.clip(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12, None)
    b = reference / np.clip(np.linalg.norm(reference, axis=1, keepdims=True), 1e-12, None)
    return float((a * b).sum(axis=1).mean() * 100.0)


def latency_ms(runner: Callable[[Batch], np.ndarray], batch: Batch, runs: int) -> float:
    """Median wall time of one call in milliseconds, after warm-up calls."""
    # torch's first few forwards at a new shape take ~25x longer (kernel selection, allocator growth);
    # a single warm-up call left them in a 5-run median.
    for _ in range(WARMUP_CALLS):
        runner(batch)
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        runner(batch)
        times.append((time.perf_counter() - start) * 1000.0)
    return round(statistics.median(times), 3)


def latency_texts(texts: list[str], size: int) -> list[str]:
    """``size`` texts cycled from ``texts``, so batch 32 exists even with few eval rows."""
    source = texts or FALLBACK_TEXTS
    return [source[i % len(source)] for i in range(size)]


def folder_size(folder: Path, names: list[str]) -> int:
    return sum((folder / n).stat().st_size for n in names if (folder / n).is_file())
