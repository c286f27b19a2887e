"""Plain objects that the hub hands out. ORM rows are turned into these at the store boundary."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any, Literal

Kind = Literal["model", "dataset", "adapter"]
KINDS: tuple[Kind, ...] = ("model", "dataset", "adapter")


def a_kind(kind: str) -> str:
    """``a model``, ``an adapter``: a kind (or "model or adapter") in a sentence."""
    return f"an {kind}" if kind[0] in "aeiou" else f"a {kind}"


Visibility = Literal["public", "private"]
# "abandoned" is never stored: a run still "running" whose process is gone from this machine reads so.
RunStatus = Literal["running", "succeeded", "failed", "abandoned"]


def to_jsonable(obj: Any) -> Any:
    """dataclasses, datetimes and containers -> JSON-ready values."""
    if hasattr(obj, "__dataclass_fields__"):
        return to_jsonable(asdict(obj))
    if isinstance(obj, dict):
        return {k: to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, datetime):
        return obj.isoformat()
    return obj


@dataclass(frozen=True)
class FileInfo:
    path: str
    sha256: str
    size: int


@dataclass(frozen=True)
class VersionInfo:
    repo: str
    kind: Kind
    number: int
    digest: str
    message: str
    creator: str
    created_at: datetime
    total_size: int
    file_count: int
    run_id: int | None

    @property
    def ref(self) -> str:
        return f"{self.repo}:{self.number}"


@dataclass(frozen=True)
class RepoInfo:
    repo: str
    kind: Kind
    visibility: Visibility
    created_at: datetime
    versions: int
    latest: int | None
    aliases: dict[str, int]


@dataclass(frozen=True)
class AliasEvent:
    alias: str
    old: int | None
    new: int | None
    at: datetime
    who: str


@dataclass(frozen=True)
class VersionDetail:
    version: VersionInfo
    files: list[FileInfo]
    aliases: list[str]
    card: str
    produced_by: int | None
    inputs: list[str]  # refs of the versions the producing run consumed
    used_by: list[str]  # refs of the versions produced by runs that consumed this one


@dataclass(frozen=True)
class Metric:
    name: str
    step: int
    value: float
    at: datetime


@dataclass(frozen=True)
class RunInfo:
    id: int
    kind: str
    spec: dict[str, Any]
    status: RunStatus
    creator: str
    started_at: datetime
    ended_at: datetime | None
    environment: dict[str, Any]
    inputs: list[str] = field(default_factory=list)
    outputs: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class LineageNode:
    ref: str
    kind: Kind
    run_id: int | None
    run_kind: str | None
    parents: list[LineageNode]


@dataclass(frozen=True)
class Lineage:
    ref: str
    upstream: LineageNode
    downstream: list[LineageNode]
