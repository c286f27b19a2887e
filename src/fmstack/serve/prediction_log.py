"""The prediction log and feedback of one server: request ids, sampling, and a bounded background writer.

Every classification answer gets a request id. With ``--log-predictions RATE`` (0 < RATE <= 1) the
server also:

- keeps each recent prediction in memory (``_Recent``, for ``--feedback-window`` seconds and at most
  ``MAX_PENDING`` requests) so that ``POST /v1/feedback`` can check an answer against what was
  predicted: an unknown or expired id, a label the model does not know and a second answer to the same
  text are refused;
- writes a sampled share (RATE) of predictions, and every feedback, to append-only segments
  (``serve.log_segments``) through one ``BackgroundWriter`` per repo and stream. A prediction that
  was not sampled but gets feedback is written then (``sampled`` false), so feedback always joins.

A request never waits for the disk: the event loop only puts a tuple on a bounded queue; when the
queue is full the row is dropped and counted (``fmstack_serve_log_dropped_total``). The writer thread
appends and fsyncs every ``--log-flush`` seconds, so a SIGKILL loses at most that long of rows (plus
the batch being written); a SIGTERM drains the queue first. After a restart the recent window is read
back from the segments, so feedback on predictions made before the restart still joins.

All state here is touched on the event loop only (the handlers are ``async`` and never await between
checking an id and marking it answered), so concurrent feedback needs no lock.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import random
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
from numpy.typing import NDArray
from prometheus_client import CollectorRegistry, Counter

from fmstack.data.pii import PII_TYPES, redact
from fmstack.errors import Conflict, InvalidInput, NotFound, Unavailable, clip
from fmstack.hub.refs import parse_ref
from fmstack.serve.log_segments import FEEDBACK, PREDICTIONS, SegmentWriter, read_stream, stream_folder
from fmstack.serve.settings import ServeSettings

log = logging.getLogger("fmstack.serve")

REQUEST_ID_HEADER = "X-Request-Id"
MAX_PENDING = 100_000  # recent requests kept for feedback (with their texts when not sampled)
MAX_PENDING_CHARS = 64_000_000  # of those texts; the oldest requests go first past either bound
MAX_LOGGED_CHARS = 10_000  # a longer text is cut to this in the log (the queue stays bounded in bytes)


def new_request_id() -> str:
    """A request id: 32 hex digits, random (uuid4), so ids from any number of servers never collide."""
    return uuid.uuid4().hex


class LogMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.rows = Counter(
            "fmstack_serve_log_rows", "Rows written to the log.", ["stream"], registry=registry
        )
        self.dropped = Counter(
            "fmstack_serve_log_dropped",
            "Rows not logged: the writer's queue was full or the disk refused them.",
            ["stream"],
            registry=registry,
        )
        self.feedback = Counter(
            "fmstack_serve_feedback",
            "Feedback answers accepted, by whether the prediction was right.",
            ["model", "outcome"],
            registry=registry,
        )


_STOP = object()


class BackgroundWriter:
    """A bounded queue of rows (tuples in ``schema`` order) and the thread that appends them."""

    def __init__(
        self,
        folder: Path,
        schema: pa.Schema,
        flush_s: float,
        max_queue: int,
        on_written: Callable[[int], None],
        on_dropped: Callable[[int], None],
        redact_text: bool = False,
    ) -> None:
        self.schema = schema
        self.flush_s = flush_s
        self._queue: queue.Queue[object] = queue.Queue(max_queue)
        self._sink = SegmentWriter(folder, schema)
        self._written, self._dropped = on_written, on_dropped
        self._text = schema.names.index("text") if redact_text and "text" in schema.names else None
        self._thread = threading.Thread(target=self._run, name=f"fmstack-log-{folder.name}", daemon=True)
        self._thread.start()

    def put(self, row: tuple[Any, ...]) -> bool:
        """Queue a row without waiting; False (and counted as dropped) when the queue is full."""
        try:
            self._queue.put_nowait(row)
        except queue.Full:
            self._dropped(1)
            return False
        return True

    def close(self) -> None:
        """Write what is queued, close the segment and stop the thread."""
        self._queue.put(_STOP)
        self._thread.join()

    def _run(self) -> None:
        rows: list[tuple[Any, ...]] = []
        flush_at = time.monotonic() + self.flush_s
        while True:
            try:
                item = self._queue.get(timeout=max(0.0, flush_at - time.monotonic()))
            except queue.Empty:
                item = None
            if item is _STOP:
                self._write(rows)
                self._sink.close()
                return
            if item is not None:
                rows.append(item)  # type: ignore[arg-type]
            if time.monotonic() >= flush_at:
                self._write(rows)
                rows = []
                flush_at = time.monotonic() + self.flush_s

    def _write(self, rows: list[tuple[Any, ...]]) -> None:
        if not rows:
            return
        try:
            columns = [list(column) for column in zip(*rows, strict=True)]
            if self._text is not None:  # here, off the event loop: redaction costs ~10 us a text
                columns[self._text] = [redact(t, PII_TYPES, {}) for t in columns[self._text]]
            self._sink.append(pa.table(columns, schema=self.schema))
            self._written(len(rows))
        except Exception:  # a full disk must not stop the server: count what is lost, say it once
            log.exception("cannot write %d rows to the prediction log in %s", len(rows), self._sink.folder)
            self._dropped(len(rows))
            self._sink.close()  # the next write starts a fresh segment


@dataclass
class _Recent:
    """One recent request, kept for its feedback."""

    at: float  # time.monotonic() when answered
    time: datetime
    model: str
    version: str
    labels: tuple[str, ...]
    predicted: list[str]
    # None once the prediction is in the log (sampled); else what to write if feedback comes for it
    unlogged: list[tuple[Any, ...]] | None
    answered: set[int] = field(default_factory=set)

    @property
    def chars(self) -> int:
        return sum(len(row[5]) for row in self.unlogged) if self.unlogged else 0


@dataclass(frozen=True)
class Feedback:
    request_id: str
    index: int
    model: str
    version: str
    predicted: str
    label: str | None
    correct: bool


class PredictionLog:
    """The log of one server (see the module docstring). ``close`` drains and stops the writers."""

    def __init__(
        self,
        root: Path,
        rate: float,
        *,
        flush_s: float = 1.0,
        max_queue: int = 10_000,
        window_s: float = 3600.0,
        redact_pii: bool = False,
        registry: CollectorRegistry | None = None,
    ) -> None:
        self.root = root
        self.rate = rate
        self.flush_s = flush_s
        self.max_queue = max_queue
        self.window_s = window_s
        self.redact_pii = redact_pii
        self.metrics = LogMetrics(registry or CollectorRegistry())
        self._writers: dict[tuple[str, str], BackgroundWriter] = {}
        self._recent: OrderedDict[str, _Recent] = OrderedDict()
        self._chars = 0
        self._random = random.Random()

    # -- predictions ----------------------------------------------------------------------------

    def record(
        self,
        model: str,
        version: str,
        labels: Sequence[str],
        texts: Sequence[str],
        scores: NDArray[np.float32],
        latency_s: float,
    ) -> str:
        """Remember one classification request (``scores``: (texts, labels)) and log it if sampled;
        its request id."""
        request_id = new_request_id()
        best = scores.argmax(axis=1)  # (texts,)
        labels = tuple(labels)
        predicted = [labels[int(i)] for i in best]
        now = datetime.now(UTC)
        latency_ms = latency_s * 1000
        rows = [
            (
                request_id,
                i,
                now,
                model,
                version,
                text[:MAX_LOGGED_CHARS],
                predicted[i],
                float(row[best[i]]),
                row,
                latency_ms,
                True,
            )
            for i, (text, row) in enumerate(zip(texts, scores, strict=True))
        ]
        sampled = self.rate >= 1.0 or self._random.random() < self.rate
        if sampled:
            writer = self._writer(version, "predictions")
            for row in rows:
                writer.put(row)
        entry = _Recent(time.monotonic(), now, model, version, labels, predicted, None if sampled else rows)
        self._remember(request_id, entry)
        return request_id

    def _remember(self, request_id: str, entry: _Recent) -> None:
        self._recent[request_id] = entry
        self._chars += entry.chars
        self._forget_old()

    def _forget_old(self) -> None:
        oldest = time.monotonic() - self.window_s
        while self._recent:
            first = next(iter(self._recent.values()))
            if first.at >= oldest and len(self._recent) <= MAX_PENDING and self._chars <= MAX_PENDING_CHARS:
                return
            self._chars -= first.chars
            self._recent.popitem(last=False)

    # -- feedback -------------------------------------------------------------------------------

    def feedback(
        self,
        request_id: str,
        index: int,
        label: str | None,
        correct: bool | None,
        comment: str | None,
        labels_of: Callable[[str], Sequence[str] | None] = lambda version: None,
    ) -> Feedback:
        """Record an answer about prediction ``index`` of request ``request_id``: the right ``label``,
        or whether the prediction was ``correct``. Refused (4xx) when the id is unknown or expired, the
        label unknown, or the text already answered. ``labels_of(version)``: the labels of a version
        the server has loaded (for requests read back from the log after a restart)."""
        self._forget_old()
        entry = self._recent.get(request_id)
        if entry is None:
            raise NotFound(
                f"request id {clip(request_id)!r} is unknown here, or older than the feedback window "
                f"({self.window_s:g} s, --feedback-window): send feedback for a recent answer of this server"
            )
        if not 0 <= index < len(entry.predicted):
            raise InvalidInput(
                f"index {index} is out of range: request {request_id} had {len(entry.predicted)} texts "
                f"(index 0 to {len(entry.predicted) - 1})"
            )
        if label is not None and label not in entry.labels:
            entry.labels = tuple(labels_of(entry.version) or entry.labels)
        if label is not None and label not in entry.labels:
            raise InvalidInput(
                f"label {clip(label)!r} is not one the model {entry.version} knows; its labels: "
                f"{clip(', '.join(entry.labels), 1000)}"
            )
        if index in entry.answered:
            raise Conflict(
                f"feedback for request {request_id} index {index} was already given; it is kept once"
            )
        predicted = entry.predicted[index]
        right = label == predicted if label is not None else bool(correct)
        known = label if label is not None else (predicted if right else None)
        now = datetime.now(UTC)
        row = (request_id, index, now, entry.model, entry.version, predicted, known, right, comment)
        if not self._writer(entry.version, "feedback").put(row):
            raise Unavailable(
                "the feedback log is full (the disk is slow or failing); retry in a few seconds"
            )
        if entry.unlogged is not None:  # not sampled: log the prediction now, so the feedback joins
            self._chars -= entry.chars
            rows, entry.unlogged = entry.unlogged, None
            writer = self._writer(entry.version, "predictions")
            for pending in rows:
                writer.put((*pending[:-1], False))
        entry.answered.add(index)
        self.metrics.feedback.labels(entry.model, "correct" if right else "incorrect").inc()
        return Feedback(request_id, index, entry.model, entry.version, predicted, known, right)

    # -- writers and lifecycle ------------------------------------------------------------------

    def _writer(self, version: str, stream: str) -> BackgroundWriter:
        repo = version.rsplit(":", 1)[0]
        writer = self._writers.get((repo, stream))
        if writer is None:
            schema = PREDICTIONS if stream == "predictions" else FEEDBACK
            rows, dropped = self.metrics.rows.labels(stream), self.metrics.dropped.labels(stream)
            writer = self._writers[(repo, stream)] = BackgroundWriter(
                stream_folder(self.root, repo, stream),
                schema,
                self.flush_s,
                self.max_queue,
                rows.inc,
                dropped.inc,
                redact_text=self.redact_pii,
            )
        return writer

    def reload(self, repos: Sequence[str]) -> int:
        """Read the window's predictions and feedback of ``repos`` back from the segments (after a
        restart), so that feedback on them joins and a second answer is still refused; rows read.
        Blocking: call it off the event loop, before the server takes requests."""
        since = datetime.now(UTC) - timedelta(seconds=self.window_s)
        count = 0
        for repo in repos:
            predictions = read_stream(stream_folder(self.root, repo, "predictions"), PREDICTIONS, since)
            feedback = read_stream(stream_folder(self.root, repo, "feedback"), FEEDBACK, since)
            count += predictions.num_rows + feedback.num_rows
            needed = predictions.select(["request_id", "index", "time", "model", "version", "label"])
            self._restore(needed.to_pylist(), feedback.select(["request_id", "index"]).to_pylist())
        return count

    def _restore(self, predictions: list[dict[str, Any]], feedback: list[dict[str, Any]]) -> None:
        now, wall = time.monotonic(), datetime.now(UTC)
        by_id: dict[str, list[dict[str, Any]]] = {}
        for row in predictions:
            by_id.setdefault(row["request_id"], []).append(row)
        for request_id, rows in by_id.items():
            rows.sort(key=lambda r: r["index"])
            first = rows[0]
            age = (wall - first["time"]).total_seconds()
            labels = self._labels_of(rows)
            self._recent[request_id] = _Recent(
                now - age,
                first["time"],
                first["model"],
                first["version"],
                labels,
                [r["label"] for r in rows],
                None,
            )
        for row in feedback:
            entry = self._recent.get(row["request_id"])
            if entry is not None:
                entry.answered.add(row["index"])
        self._recent = OrderedDict(sorted(self._recent.items(), key=lambda item: item[1].at))

    @staticmethod
    def _labels_of(rows: list[dict[str, Any]]) -> tuple[str, ...]:
        """The labels a request read back from the log is known to have: those it was predicted with
        (a version's full label set is not logged per row; ``feedback``'s ``labels_of`` gives it)."""
        return tuple(dict.fromkeys(r["label"] for r in rows))

    def close(self) -> None:
        for writer in self._writers.values():
            writer.close()
        self._writers.clear()


async def open_log(settings: ServeSettings, home: Path, registry: CollectorRegistry) -> PredictionLog | None:
    """The server's prediction log when ``--log-predictions`` is above 0 (else None), with the recent
    window read back from its segments (off the event loop: it reads files)."""
    if settings.log_predictions <= 0:
        return None
    root = settings.log_dir or home / "predictions"
    log_ = PredictionLog(
        root,
        settings.log_predictions,
        flush_s=settings.log_flush_s,
        window_s=settings.feedback_window_s,
        redact_pii=settings.log_redact_pii,
        registry=registry,
    )
    repos = sorted({parse_ref(name).repo for name in settings.models})
    restored = await asyncio.to_thread(log_.reload, repos)
    log.info(
        "logging %g of predictions to %s (%d recent rows read back)", settings.log_predictions, root, restored
    )
    return log_
