"""What the coordinator hands out: a client's task, an update's outcome, a federation's status.
Plain data (JSON through ``hub.entities.to_jsonable``); no database rows leave the coordinator."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


@dataclass(frozen=True)
class Task:
    """What a client should do now: ``train`` round N from its global adapter, ``wait``, or stop (``done``)."""

    action: str  # "train" | "wait" | "done"
    round: int
    spec: dict[str, Any]
    global_ref: str | None
    deadline: datetime | None
    message: str = ""
    base_digest: str = ""  # content digest of the base model: the client's copy must match


@dataclass(frozen=True)
class UpdateOutcome:
    status: str  # "accepted" | "rejected" | "late"
    round: int
    reason: str = ""
    norm: float | None = None
    update_ref: str | None = None
    run_id: int | None = None


@dataclass(frozen=True)
class RoundInfo:
    number: int
    status: str
    input_ref: str | None
    output_ref: str | None
    run_id: int | None
    opened_at: datetime
    deadline_at: datetime
    closed_at: datetime | None
    metrics: dict[str, Any]
    note: str
    updates: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True)
class FederationStatus:
    name: str
    owner: str
    status: str
    round: int
    global_ref: str | None
    spec: dict[str, Any]
    clients: list[str]
    rounds: list[RoundInfo]
    epsilon: float | None
