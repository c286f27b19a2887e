"""``HubApi``: what the rest of fmstack uses of a hub, as a typed Protocol.

Commands, training, data and compression code should depend on this, not on the local ``Hub`` class,
so that another implementation can stand in for the local one: the remote hub
(``fmstack.server.remote.RemoteHub``, an HTTP client of ``fmstack.server``) implements the same members
with the same meaning, and the code above does not care which it holds (``fmstack.cli.remote.open_hub``
hands commands one or the other). The local ``Hub`` (``fmstack.hub.store``) is checked against it by mypy
and by ``tests/hub/test_api.py``.

What an implementation promises:

- **Refs** are ``namespace/name`` (latest), ``namespace/name:N`` and ``namespace/name@alias``;
  ``fmstack.hub.refs.parse_ref`` is the grammar, and bad refs raise ``InvalidInput``.
- **Errors** come from ``fmstack.errors``: ``NotFound`` (no such repo, version, alias, run or file),
  ``Conflict`` (a repo of another kind; a removal that aliases or lineage forbid), ``InvalidInput``,
  ``IntegrityError`` (bytes that do not match their hash), ``Unavailable`` (a read-only or unreachable
  hub). A remote implementation maps its HTTP statuses back onto these.
- **Versions are immutable**: pushing the latest version's content again returns that version;
  cards and aliases are metadata and may change.
- **Bytes are verified**: ``pull``, ``checkout`` and ``read_file`` check every sha256 before a byte is
  visible to the caller.
- **Runs** (``runs``) record the work that produced versions; ``runs.recorded`` marks a run failed
  when its block raises.

What it does not cover: the blob store, the database and the garbage collector (``maintenance``), which
are the local hub's own business and reached only by the hub CLI's ``fsck`` and ``gc``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

from fmstack.hub.entities import (
    AliasEvent,
    Kind,
    Lineage,
    Metric,
    RepoInfo,
    RunInfo,
    RunStatus,
    VersionDetail,
    VersionInfo,
)
from fmstack.settings import Settings


class RunsApi(Protocol):
    """Records of work (``hub.runs``): created running, given metrics and logs, closed."""

    def start(
        self,
        kind: str,
        spec: dict[str, Any],
        inputs: Sequence[str] = (),
        device: str | None = None,
        started_at: datetime | None = None,
    ) -> int:
        """Record a new running run consuming the versions ``inputs`` names; its id."""
        ...

    def recorded(
        self,
        kind: str,
        spec: dict[str, Any],
        inputs: Sequence[str] = (),
        device: str | None = None,
    ) -> AbstractContextManager[int]:
        """The block's work as a run: failed (with the reason) when it raises, succeeded otherwise."""
        ...

    def discard(self, run_id: int) -> None: ...
    def log_metrics(self, run_id: int, step: int, metrics: dict[str, float]) -> None: ...
    def append_log(self, run_id: int, text: str) -> None: ...
    def finish(
        self, run_id: int, status: RunStatus = "succeeded", spec_update: dict[str, Any] | None = None
    ) -> None: ...
    def get(self, run_id: int) -> RunInfo: ...
    def recent(self, kind: str | None = None, limit: int = 50) -> list[RunInfo]: ...
    def metrics(self, run_id: int, name: str | None = None) -> list[Metric]: ...
    def logs(self, run_id: int) -> str: ...


class HubApi(Protocol):
    """A hub of repos (model, dataset, adapter) of immutable versions, with aliases, cards, lineage
    and runs. Used as a context manager; ``close`` releases its connections."""

    @property
    def settings(self) -> Settings:
        """This machine's settings: ``home`` is where local work (temp folders, checkouts) goes,
        ``user`` who is recorded as the creator, whichever hub holds the versions."""
        ...

    @property
    def runs(self) -> RunsApi: ...

    @property
    def read_only(self) -> bool:
        """Reads work but nothing may be written (a read-only FMSTACK_HOME, a read-only token)."""
        ...

    def check_writable(self, doing: str) -> None:
        """Raise ``Unavailable`` naming ``doing`` when the hub is read-only, before any work is done."""
        ...

    def close(self) -> None: ...
    def __enter__(self) -> HubApi: ...
    def __exit__(self, *exc: object) -> None: ...

    # -- versions: push, pull, read --------------------------------------------------------------

    def push(
        self,
        repo: str,
        path: Path | str,
        kind: Kind,
        *,
        message: str = "",
        alias: str | None = None,
        card: str | None = None,
        run_id: int | None = None,
        progress: Callable[[int], None] | None = None,
    ) -> VersionInfo:
        """Store a folder (or one file) as a new version of ``repo``; ``progress`` gets byte counts."""
        ...

    def check_repo_kind(self, repo: str, kind: Kind) -> None:
        """Raise ``Conflict`` when ``repo`` exists with another kind (checked before long work)."""
        ...

    def pull(self, ref: str, dest: Path | str, progress: Callable[[int], None] | None = None) -> VersionInfo:
        """Write a version's files under ``dest``, verified; a failed pull leaves nothing of its own."""
        ...

    def checkout(self, ref: str) -> Path:
        """A verified, read-only local copy of a version's files, cached by digest."""
        ...

    def read_file(self, ref: str, path: str) -> bytes:
        """The verified bytes of one (small) file of a version."""
        ...

    def resolve(self, ref: str) -> VersionInfo: ...
    def info(self, ref: str) -> VersionDetail: ...
    def ls(self, kind: Kind | None = None, namespace: str | None = None) -> list[RepoInfo]: ...
    def versions(self, repo: str) -> list[VersionInfo]: ...
    def rm(self, ref: str, *, force: bool = False) -> list[VersionInfo]:
        """Remove a version or a whole repo; ``Conflict`` while an alias or a derived version needs it."""
        ...

    # -- aliases, cards, lineage -----------------------------------------------------------------

    def tag(self, ref: str, alias: str) -> VersionInfo: ...
    def untag(self, repo: str, alias: str) -> None: ...
    def alias_history(self, repo: str) -> list[AliasEvent]: ...
    def card(self, ref: str) -> str: ...
    def set_card(self, ref: str, text: str) -> VersionInfo: ...
    def lineage(self, ref: str) -> Lineage: ...
