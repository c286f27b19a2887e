"""The server's tables in the hub's database: brought to the head of the server's own Alembic history
when a server (or a ``fmstack server`` command) opens the hub. Cheap when current; safe when several
server processes start at once on one database (an advisory lock on PostgreSQL, a file lock on SQLite).
"""

from __future__ import annotations

import contextlib
import importlib.resources
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from filelock import FileLock
from sqlalchemy import Engine, text

HEAD_REVISION = "s0002"
VERSION_TABLE = "fmstack_server_version"
_PG_LOCK_KEY = 727002  # the hub's own migrations hold 727001


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        try:
            return conn.execute(text(f"SELECT version_num FROM {VERSION_TABLE}")).scalar()
        except Exception:  # no table yet: the server never ran on this database
            return None


def migrate(engine: Engine, lock_dir: Path | None) -> None:
    if current_revision(engine) == HEAD_REVISION:
        return
    from alembic import command

    with _lock(engine, lock_dir):
        if current_revision(engine) != HEAD_REVISION:
            command.upgrade(_alembic_config(engine), "head")


def _alembic_config(engine: Engine) -> Any:
    from alembic.config import Config

    cfg = Config()
    location = importlib.resources.files("fmstack.server") / "migrations"
    cfg.set_main_option("script_location", str(location))
    cfg.attributes["engine"] = engine
    return cfg


@contextlib.contextmanager
def _lock(engine: Engine, lock_dir: Path | None) -> Iterator[None]:
    if engine.dialect.name == "postgresql":
        with engine.connect() as conn:
            conn.execute(text(f"SELECT pg_advisory_lock({_PG_LOCK_KEY})"))
            try:
                yield
            finally:
                conn.execute(text(f"SELECT pg_advisory_unlock({_PG_LOCK_KEY})"))
                conn.commit()
        return
    if lock_dir is None:
        yield
        return
    lock_dir.mkdir(parents=True, exist_ok=True)
    with FileLock(str(lock_dir / ".server-migrate.lock")):
        yield
