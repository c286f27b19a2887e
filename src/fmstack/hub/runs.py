"""Runs: the records of work that produced versions (ingest, process, train, eval, compress).

A run has a kind, its spec (JSON), a status, start and end times, a metric time series, logs and the
environment it ran in. Its inputs are the versions it consumed; versions pushed with its id are its
outputs. Together they are the hub's lineage.
"""

from __future__ import annotations

import os
import platform
import signal
import socket
import sys
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session, joinedload

from fmstack.errors import InvalidInput, NotFound
from fmstack.hub.entities import Metric, RunInfo, RunStatus
from fmstack.hub.refs import parse_ref
from fmstack.hub.resolve import ref_of, version_row
from fmstack.hub.schema import MetricRow, RepoRow, RunInputRow, RunRow, VersionRow
from fmstack.hub.scratch import pid_alive
from fmstack.hub.transactions import Transactions

_STATUSES = ("running", "succeeded", "failed")


class Terminated(KeyboardInterrupt):
    """SIGTERM during recorded work, raised like Ctrl-C so that the work unwinds the same way (temp
    folders removed, the run recorded as failed) and the CLI says "interrupted"."""


@contextmanager
def sigterm_interrupts() -> Iterator[None]:
    """Within the block, SIGTERM raises ``Terminated`` in the main thread (elsewhere: no change)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(_signum: int, _frame: object) -> None:
        raise Terminated("terminated (SIGTERM)")

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def failure_reason(exc: BaseException) -> str:
    if isinstance(exc, Terminated):
        return "interrupted (SIGTERM)"
    if isinstance(exc, KeyboardInterrupt):
        return "interrupted (Ctrl-C)"
    return f"{type(exc).__name__}: {exc}"


def environment(device: str | None = None) -> dict[str, Any]:
    """Versions of the pieces that decide numerics, and the device, without importing torch."""

    def pkg(name: str) -> str | None:
        try:
            return version(name)
        except PackageNotFoundError:
            return None

    if device is None:
        torch = sys.modules.get("torch")
        device = "cuda" if torch is not None and torch.cuda.is_available() else "cpu"
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "fmstack": pkg("fmstack"),
        "torch": pkg("torch"),
        "transformers": pkg("transformers"),
        "device": device,
        "host": socket.gethostname(),
        "pid": os.getpid(),  # with host: whether a "running" run's process is still alive
    }


def _now() -> datetime:
    return datetime.now(UTC)


class RunLog:
    """Create runs, append metrics and logs, close them. Reached as ``Hub.runs``."""

    def __init__(self, db: Transactions, user: str) -> None:
        # Plain transactions rather than ``db.write``: run records are inserts and updates that no
        # concurrent writer races on a unique key, so there is nothing to retry.
        self._sessions = db.sessions
        self._user = user

    def start(
        self,
        kind: str,
        spec: dict[str, Any],
        inputs: Sequence[str] = (),
        device: str | None = None,
        started_at: datetime | None = None,
    ) -> int:
        """Record a new running run that consumes the versions named by ``inputs`` (refs).
        ``started_at``: when the work began, for runs recorded only once their result is known."""
        with self._sessions.begin() as session:
            versions = [version_row(session, parse_ref(ref)) for ref in inputs]
            run = RunRow(
                kind=kind,
                spec=spec,
                status="running",
                creator=self._user,
                started_at=started_at or _now(),
                environment=environment(device),
                logs="",
            )
            session.add(run)
            session.flush()
            session.add_all(
                RunInputRow(run_id=run.id, version_id=v.id) for v in {v.id: v for v in versions}.values()
            )
            return run.id

    @contextmanager
    def recorded(
        self,
        kind: str,
        spec: dict[str, Any],
        inputs: Sequence[str] = (),
        device: str | None = None,
    ) -> Iterator[int]:
        """Record the work of the block as a run: created as running when the work starts; failed,
        with the reason in its log and spec (``error``), when the block raises, Ctrl-C and SIGTERM
        included; succeeded when the block ends, unless it closed the run itself (``finish`` with
        its own details, or ``discard``). Yields the run's id."""
        run_id = self.start(kind, spec, inputs, device)
        try:
            with sigterm_interrupts():
                yield run_id
        except BaseException as exc:
            self._record_failure(run_id, failure_reason(exc))
            raise
        if self._status(run_id) == "running":
            self.finish(run_id, "succeeded")

    def _record_failure(self, run_id: int, reason: str) -> None:
        # The work's own error is the one to report, not a failure to record it (a read-only hub).
        with suppress(Exception):
            self.append_log(run_id, f"failed: {reason}")
            self.finish(run_id, "failed", spec_update={"error": reason})

    def _status(self, run_id: int) -> str | None:
        with self._sessions() as session:
            run = session.get(RunRow, run_id)
            return run.status if run is not None else None

    def discard(self, run_id: int) -> None:
        """Forget a run that turned out to produce nothing new (its result was already stored)."""
        with self._sessions.begin() as session:
            session.execute(delete(MetricRow).where(MetricRow.run_id == run_id))
            session.execute(delete(RunInputRow).where(RunInputRow.run_id == run_id))
            session.execute(delete(RunRow).where(RunRow.id == run_id))

    def log_metrics(self, run_id: int, step: int, metrics: dict[str, float]) -> None:
        with self._sessions.begin() as session:
            self._get(session, run_id)
            at = _now()
            session.add_all(
                MetricRow(run_id=run_id, name=k, step=step, value=float(v), at=at) for k, v in metrics.items()
            )

    def append_log(self, run_id: int, text: str) -> None:
        with self._sessions.begin() as session:
            run = self._get(session, run_id)
            run.logs = (run.logs or "") + text if text.endswith("\n") else (run.logs or "") + text + "\n"

    def finish(
        self, run_id: int, status: RunStatus = "succeeded", spec_update: dict[str, Any] | None = None
    ) -> None:
        if status not in _STATUSES:
            raise InvalidInput(f"bad run status {status!r}: use one of {', '.join(_STATUSES)}")
        with self._sessions.begin() as session:
            run = self._get(session, run_id)
            run.status, run.ended_at = status, _now()
            if spec_update:
                run.spec = {**run.spec, **spec_update}

    def get(self, run_id: int) -> RunInfo:
        with self._sessions() as session:
            return self._info(session, self._get(session, run_id))

    def recent(self, kind: str | None = None, limit: int = 50) -> list[RunInfo]:
        with self._sessions() as session:
            query = select(RunRow).order_by(RunRow.id.desc()).limit(limit)
            if kind is not None:
                query = query.where(RunRow.kind == kind)
            return self._infos(session, list(session.scalars(query)))

    def metrics(self, run_id: int, name: str | None = None) -> list[Metric]:
        with self._sessions() as session:
            self._get(session, run_id)
            query = (
                select(MetricRow).where(MetricRow.run_id == run_id).order_by(MetricRow.name, MetricRow.step)
            )
            if name is not None:
                query = query.where(MetricRow.name == name)
            return [Metric(m.name, m.step, m.value, m.at) for m in session.scalars(query)]

    def logs(self, run_id: int) -> str:
        with self._sessions() as session:
            return self._get(session, run_id).logs or ""

    @staticmethod
    def _get(session: Session, run_id: int) -> RunRow:
        run = session.get(RunRow, run_id)
        if run is None:
            raise NotFound(f"no run {run_id}; `fmstack runs ls` lists recent runs")
        return run

    @staticmethod
    def _info(session: Session, run: RunRow) -> RunInfo:
        return RunLog._infos(session, [run])[0]

    @staticmethod
    def _infos(session: Session, runs: list[RunRow]) -> list[RunInfo]:
        """The runs' records with the refs they consumed and produced: two queries per 500 runs (with
        each version's repo and namespace joined in, as ``ref_of`` reads them), not two per run."""
        eager = joinedload(VersionRow.repo).joinedload(RepoRow.namespace)
        inputs: dict[int, list[str]] = {}
        outputs: dict[int, list[str]] = {}
        for start in range(0, len(runs), 500):
            ids = [r.id for r in runs[start : start + 500]]
            consumed = (
                select(RunInputRow.run_id, VersionRow)
                .join(VersionRow, VersionRow.id == RunInputRow.version_id)
                .where(RunInputRow.run_id.in_(ids))
                .order_by(VersionRow.id)
                .options(eager)
            )
            for run_id, row in session.execute(consumed):
                inputs.setdefault(run_id, []).append(ref_of(row))
            produced = (
                select(VersionRow).where(VersionRow.run_id.in_(ids)).order_by(VersionRow.id).options(eager)
            )
            for row in session.scalars(produced):
                outputs.setdefault(row.run_id or 0, []).append(ref_of(row))
        return [
            RunInfo(
                id=run.id,
                kind=run.kind,
                spec=run.spec,
                status="abandoned" if _abandoned(run) else run.status,  # type: ignore[arg-type]
                creator=run.creator,
                started_at=run.started_at,
                ended_at=run.ended_at,
                environment=run.environment,
                inputs=inputs.get(run.id, []),
                outputs=outputs.get(run.id, []),
            )
            for run in runs
        ]


def _abandoned(run: RunRow) -> bool:
    """A run recorded as running by a process of this machine that no longer exists (killed before
    it could record how it ended). Runs of other machines, or without a pid, are taken at their word."""
    env = run.environment or {}
    pid = env.get("pid")
    if run.status != "running" or env.get("host") != socket.gethostname() or not isinstance(pid, int):
        return False
    return not pid_alive(pid)
