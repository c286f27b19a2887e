"""What a version's live traffic is compared with: its training data's labels and texts, and the
model's own confidence on held-out rows of that data.

The training data is found through lineage: the dataset a ``train`` run consumed on the way to the
version (through compress and merge runs). The model's confidences need a forward pass over up to
``SAMPLE`` rows, so they are kept in ``<log root>/<repo>/reference/<digest>.json`` and computed once
per version.
"""

from __future__ import annotations

import json
import logging
import os
import random
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from fmstack.data import format as dataformat
from fmstack.errors import InvalidInput
from fmstack.hub import HubApi, LineageNode, VersionInfo
from fmstack.serve.loader import load_runtime
from fmstack.serve.runtimes.base import Runtime

log = logging.getLogger("fmstack.monitor")
SAMPLE = 500  # held-out rows scored for the confidence reference, and training texts kept
_BATCH = 32


@dataclass(frozen=True)
class Reference:
    dataset: str | None  # the training data's version, when lineage names one
    labels: dict[str, int]  # label -> rows in its train split
    confidences: list[float]  # the model's top score on held-out rows (validation, else test, else train)
    texts: list[str]  # a sample of training texts (for the embedding test)


def training_data(hub: HubApi, ref: str) -> str | None:
    """The dataset version the nearest ``train`` run upstream of ``ref`` consumed (else any upstream
    dataset), or None."""
    queue: list[LineageNode] = [hub.lineage(ref).upstream]
    fallback: str | None = None
    while queue:
        node = queue.pop(0)
        datasets = [p.ref for p in node.parents if p.kind == "dataset"]
        if datasets and node.run_kind == "train":
            return datasets[0]
        fallback = fallback or (datasets[0] if datasets else None)
        queue.extend(node.parents)
    return fallback


def forward_texts(runtime: Runtime, texts: Sequence[str]) -> NDArray[np.float32]:
    """(texts, labels) scores of ``texts``, each cut to the model's max_length (special tail kept)."""
    limit = runtime.info.max_length
    rows: list[NDArray[np.float32]] = []
    for start in range(0, len(texts), _BATCH):
        ids = runtime.encode(list(texts[start : start + _BATCH]))
        ids = [seq if len(seq) <= limit else seq[: limit - 1] + seq[-1:] for seq in ids]
        rows.append(runtime.forward(ids))
    return np.concatenate(rows) if rows else np.zeros((0, len(runtime.info.labels)), np.float32)


def reference(hub: HubApi, version: VersionInfo, root: Path) -> Reference:
    """The reference of ``version``, from the cache when computed before."""
    cache = root.joinpath(*version.repo.split("/"), "reference", f"{version.digest}.json")
    if cache.is_file():
        return Reference(**json.loads(cache.read_text()))
    found = _compute(hub, version)
    cache.parent.mkdir(parents=True, exist_ok=True)
    tmp = cache.with_name(f".{cache.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(asdict(found)))
    os.replace(tmp, cache)  # whole or not at all
    return found


def _compute(hub: HubApi, version: VersionInfo) -> Reference:
    dataset = training_data(hub, version.ref)
    if dataset is None:
        log.warning("%s has no training data in its lineage: no label or confidence reference", version.ref)
        return Reference(None, {}, [], [])
    folder = hub.checkout(dataset)
    manifest = dataformat.read_manifest(folder)
    train = dataformat.read_split(folder, "train") if "train" in manifest.splits else None
    labels = (
        Counter(train.column("label").to_pylist())
        if train is not None and "label" in train.column_names
        else {}
    )
    rng = random.Random(0)
    texts = train.column("text").to_pylist() if train is not None else []
    held_out = next((s for s in ("validation", "test", "train") if s in manifest.splits), None)
    if held_out is None:
        raise InvalidInput(f"the training data {dataset} of {version.ref} has no split to score")
    pool = dataformat.read_split(folder, held_out).column("text").to_pylist()
    sample = rng.sample(pool, min(SAMPLE, len(pool)))
    _, runtime = load_runtime(hub, version.ref, threads=None)
    try:
        confidences = forward_texts(runtime, sample).max(axis=1).tolist() if sample else []
    finally:
        runtime.close()
    return Reference(
        dataset,
        {str(k): int(v) for k, v in labels.items()},
        confidences,
        rng.sample(texts, min(SAMPLE, len(texts))),
    )
