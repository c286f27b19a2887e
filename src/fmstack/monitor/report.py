"""``fmstack monitor report REF``: what a version did in production, and whether its traffic drifted.

Volume, latency, the confidence distribution, the predicted labels against the training data's,
drift scores (``monitor.drift``: PSI on labels and on confidence, and with an embedder the MMD
two-sample test in embedding space) and accuracy on feedback, from the prediction log.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict

from fmstack.errors import NotFound
from fmstack.hub import HubApi, VersionInfo
from fmstack.monitor import drift, logs
from fmstack.monitor.reference import Reference, forward_texts, reference
from fmstack.serve.loader import load_runtime

EMBED_SAMPLE = 300  # texts a side in the embedding test: its kernel matrix is (600, 600)
MIN_ROWS = 30  # fewer predictions than this: drift scores are noise, and are not given


class _Figures(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Latency(_Figures):
    p50: float
    p95: float
    p99: float


class Confidence(_Figures):
    mean: float
    p10: float
    p50: float
    histogram: list[int]  # 10 bins over [0, 1]
    reference_histogram: list[int]  # the model's own on held-out data


class LabelShare(_Figures):
    label: str
    predicted: float  # share of predictions
    training: float | None  # share in the training data's train split


class EmbeddingDrift(_Figures):
    embedder: str
    mmd2: float
    p_value: float
    drifted: bool
    n_reference: int
    n_current: int


class Drift(_Figures):
    label_psi: float | None
    label: str | None  # stable / moderate / significant
    confidence_psi: float | None
    confidence: str | None
    embedding: EmbeddingDrift | None
    notes: list[str]


class ClassAccuracy(_Figures):
    count: int
    accuracy: float


class FeedbackFigures(_Figures):
    count: int
    accuracy: float | None
    per_label: dict[str, ClassAccuracy]  # by the right label (feedback with one)


class Report(_Figures):
    schema_version: Literal[1] = 1
    ref: str
    version: str
    training_data: str | None
    since: datetime | None
    until: datetime
    predictions: int
    requests: int
    latency_ms: Latency | None
    confidence: Confidence | None
    labels: list[LabelShare]
    drift: Drift
    feedback: FeedbackFigures


def _histogram(values: list[float]) -> list[int]:
    counts, _ = np.histogram(np.clip(values, 0, 1), bins=10, range=(0, 1))
    return [int(c) for c in counts]


def build(
    hub: HubApi,
    ref: str,
    root: Path,
    since: datetime | None = None,
    embedder: str | None = None,
    with_reference: bool = True,
) -> Report:
    """The report of the version ``ref`` points at now, from its log rows since ``since``.
    ``with_reference``: compare with the training data (a forward pass on first use per version)."""
    version = hub.resolve(ref)
    rows = logs.predictions(root, version.repo, {version.ref}, since)
    answers = logs.join(rows, logs.feedback(root, version.repo, {version.ref}, since))
    ref_data = reference(hub, version, root) if with_reference else Reference(None, {}, [], [])
    confidences = rows.column("confidence").to_numpy().astype(float).tolist()
    predicted = Counter(rows.column("label").to_pylist())
    latencies = rows.column("latency_ms").to_numpy()
    notes: list[str] = []
    return Report(
        ref=ref,
        version=version.ref,
        training_data=ref_data.dataset,
        since=since,
        until=datetime.now(UTC),
        predictions=rows.num_rows,
        requests=len(set(rows.column("request_id").to_pylist())),
        latency_ms=Latency(**{f"p{q}": float(np.percentile(latencies, q)) for q in (50, 95, 99)})
        if len(latencies)
        else None,
        confidence=Confidence(
            mean=float(np.mean(confidences)),
            p10=float(np.percentile(confidences, 10)),
            p50=float(np.percentile(confidences, 50)),
            histogram=_histogram(confidences),
            reference_histogram=_histogram(ref_data.confidences),
        )
        if confidences
        else None,
        labels=_label_shares(predicted, ref_data.labels),
        drift=_drift(
            hub, version, rows.column("text").to_pylist(), confidences, predicted, ref_data, embedder, notes
        ),
        feedback=_feedback(answers),
    )


def _label_shares(predicted: Counter[str], training: dict[str, int]) -> list[LabelShare]:
    total, train_total = sum(predicted.values()), sum(training.values())
    labels = sorted(set(predicted) | set(training), key=lambda k: (-predicted.get(k, 0), k))
    return [
        LabelShare(
            label=label,
            predicted=predicted.get(label, 0) / total if total else 0.0,
            training=training.get(label, 0) / train_total if train_total else None,
        )
        for label in labels
    ]


def _drift(
    hub: HubApi,
    version: VersionInfo,
    texts: list[str],
    confidences: list[float],
    predicted: Counter[str],
    ref_data: Reference,
    embedder: str | None,
    notes: list[str],
) -> Drift:
    if len(confidences) < MIN_ROWS:
        notes.append(f"{len(confidences)} predictions logged; drift needs at least {MIN_ROWS}")
        return Drift(
            label_psi=None, label=None, confidence_psi=None, confidence=None, embedding=None, notes=notes
        )
    label_psi = drift.psi(ref_data.labels, dict(predicted)) if ref_data.labels else None
    conf_psi = drift.psi_continuous(ref_data.confidences, confidences) if ref_data.confidences else None
    if ref_data.dataset is None:
        notes.append(f"{version.ref} has no training data in its lineage: no label or confidence reference")
    embedding = _embedding_drift(hub, embedder, ref_data.texts, texts, notes)
    return Drift(
        label_psi=label_psi,
        label=drift.severity(label_psi) if label_psi is not None else None,
        confidence_psi=conf_psi,
        confidence=drift.severity(conf_psi) if conf_psi is not None else None,
        embedding=embedding,
        notes=notes,
    )


def _embedding_drift(
    hub: HubApi, embedder: str | None, reference_texts: list[str], texts: list[str], notes: list[str]
) -> EmbeddingDrift | None:
    if embedder is None:
        notes.append("no embedding test: name an embedding model with --embedder (e.g. fmstack/minilm-l6)")
        return None
    if not reference_texts:
        notes.append("no embedding test: the training data is unknown")
        return None
    try:
        _, runtime = load_runtime(hub, embedder, threads=None)
    except NotFound:
        notes.append(f"no embedding test: {embedder} is not in this hub (fmstack hub import-builtin adds it)")
        return None
    rng = np.random.default_rng(0)
    live = [texts[int(i)] for i in rng.choice(len(texts), min(EMBED_SAMPLE, len(texts)), replace=False)]
    try:
        if runtime.info.task != "embedding":
            notes.append(f"no embedding test: {embedder} is not an embedding model")
            return None
        result = drift.mmd_test(
            forward_texts(runtime, reference_texts[:EMBED_SAMPLE]), forward_texts(runtime, live)
        )
    finally:
        runtime.close()
    return EmbeddingDrift(
        embedder=embedder,
        mmd2=result.mmd2,
        p_value=result.p_value,
        drifted=result.drifted(),
        n_reference=result.n_reference,
        n_current=result.n_current,
    )


def _feedback(answers: list[logs.Answered]) -> FeedbackFigures:
    per_label: dict[str, list[bool]] = {}
    for answer in answers:
        if answer.label is not None:
            per_label.setdefault(answer.label, []).append(answer.correct)
    return FeedbackFigures(
        count=len(answers),
        accuracy=sum(a.correct for a in answers) / len(answers) if answers else None,
        per_label={
            label: ClassAccuracy(count=len(marks), accuracy=sum(marks) / len(marks))
            for label, marks in sorted(per_label.items())
        },
    )
