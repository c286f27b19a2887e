"""Transactions on the hub's metadata database: one read session, or one write transaction retried
when a concurrent writer won a unique-key race. Every store module (versions, aliases, cards) runs its
queries through one ``Transactions``; none opens sessions of its own.

Knows nothing of repos or versions; knows whether the database may be written.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

import sqlalchemy.exc
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from fmstack.errors import Unavailable
from fmstack.hub.db import is_read_only, session_factory

T = TypeVar("T")
_ATTEMPTS = 8  # unique-key races resolve within a retry or two; the bound only stops a livelock


def now() -> datetime:
    return datetime.now(UTC)


class Transactions:
    """Sessions over ``engine``; ``home`` names the folder in the read-only message."""

    def __init__(self, engine: Engine, home: Path) -> None:
        self.sessions: sessionmaker[Session] = session_factory(engine)
        self._engine = engine
        self._home = home

    @property
    def read_only(self) -> bool:
        """Opened on a database this user cannot write (a read-only FMSTACK_HOME): reads work."""
        return is_read_only(self._engine)

    def check_writable(self, doing: str) -> None:
        """Refuse ``doing`` up front on a read-only hub, before any work or bytes are copied."""
        if self.read_only:
            raise Unavailable(
                f"FMSTACK_HOME is read-only: {self._home} cannot be written (a read-only "
                f"mount, or a folder of another user), so it cannot {doing}; reading works. Use a "
                "writable FMSTACK_HOME for commands that change the hub"
            )

    def write(self, fn: Callable[[Session], T]) -> T:
        """Run ``fn`` in one write transaction; retry when a concurrent writer won a unique-key race
        (two processes creating the same repo or version number on PostgreSQL)."""
        self.check_writable("record this change")
        for attempt in range(_ATTEMPTS):
            try:
                with self.sessions.begin() as session:
                    return fn(session)
            except sqlalchemy.exc.IntegrityError:
                if attempt == _ATTEMPTS - 1:
                    raise
        raise AssertionError("unreachable")

    def read(self, fn: Callable[[Session], T]) -> T:
        with self.sessions() as session:
            return fn(session)
