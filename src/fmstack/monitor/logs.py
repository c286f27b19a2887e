"""Reading the prediction log that ``fmstack serve --log-predictions`` writes (``serve.log_segments``).

Rows are filtered by version (a report is about the version a ref points at) and by time; feedback
is joined to the prediction it answers on (request id, index).
"""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from fmstack.errors import InvalidInput, clip
from fmstack.serve.log_segments import FEEDBACK, PREDICTIONS, read_stream, stream_folder
from fmstack.settings import Settings

_DURATION = re.compile(r"^(\d+(?:\.\d+)?)([smhd])$")
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def log_root(settings: Settings, log_dir: Path | None = None) -> Path:
    """Where the server writes its log unless told otherwise (``fmstack serve --log-dir``)."""
    return log_dir or settings.home / "predictions"


def parse_since(text: str | None, now: datetime | None = None) -> datetime | None:
    """``--since``: a duration back from now (``30m``, ``24h``, ``7d``) or an ISO time (UTC unless it
    says otherwise)."""
    if text is None:
        return None
    now = now or datetime.now(UTC)
    found = _DURATION.match(text.strip())
    if found:
        return now - timedelta(seconds=float(found.group(1)) * _UNIT_S[found.group(2)])
    try:
        at = datetime.fromisoformat(text.strip())
    except ValueError:
        raise InvalidInput(
            f"--since {clip(text)!r} is neither a duration (30m, 24h, 7d) nor an ISO time (2026-12-07T10:00)"
        ) from None
    return at if at.tzinfo is not None else at.replace(tzinfo=UTC)


def _of_versions(table: pa.Table, versions: Collection[str] | None) -> pa.Table:
    if versions is None or not table.num_rows:
        return table
    return table.filter(pc.is_in(table["version"], pa.array(sorted(versions), pa.string())))


def predictions(
    root: Path, repo: str, versions: Collection[str] | None = None, since: datetime | None = None
) -> pa.Table:
    """Logged predictions of ``repo`` (of ``versions`` only, when given) from ``since`` on."""
    return _of_versions(read_stream(stream_folder(root, repo, "predictions"), PREDICTIONS, since), versions)


def feedback(
    root: Path, repo: str, versions: Collection[str] | None = None, since: datetime | None = None
) -> pa.Table:
    return _of_versions(read_stream(stream_folder(root, repo, "feedback"), FEEDBACK, since), versions)


@dataclass(frozen=True)
class Answered:
    """A feedback row with the text it was about."""

    request_id: str
    index: int
    time: datetime
    version: str
    text: str
    predicted: str
    confidence: float
    label: str | None  # None: only "correct": false was said
    correct: bool


def join(predicted: pa.Table, answers: pa.Table) -> list[Answered]:
    """Each feedback row with its prediction (the last answer counts if a text was answered twice);
    feedback whose prediction is not in ``predicted`` (outside the window read) is left out."""
    texts: dict[tuple[str, int], dict[str, Any]] = {
        (row["request_id"], row["index"]): row
        for row in predicted.select(["request_id", "index", "text", "confidence"]).to_pylist()
    }
    joined: dict[tuple[str, int], Answered] = {}
    for row in answers.to_pylist():
        key = (row["request_id"], row["index"])
        prediction = texts.get(key)
        if prediction is None:
            continue
        joined[key] = Answered(
            row["request_id"],
            row["index"],
            row["time"],
            row["version"],
            prediction["text"],
            row["predicted"],
            float(prediction["confidence"]),
            row["label"],
            bool(row["correct"]),
        )
    return sorted(joined.values(), key=lambda a: a.time)
