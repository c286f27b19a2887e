"""Database engine for hub metadata: SQLite (WAL) by default, PostgreSQL by URL, schema kept current by
Alembic. Knows nothing about what the tables mean."""

from __future__ import annotations

import contextlib
import importlib.resources
import os
import sqlite3
import weakref
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from filelock import FileLock
from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError
from sqlalchemy.orm import Session, sessionmaker

from fmstack.errors import InvalidInput, Unavailable, Unsupported

HEAD_REVISION = "0001"
_READ_ONLY: weakref.WeakSet[Engine] = weakref.WeakSet()  # engines opened read-only


def create_hub_engine(url: str) -> Engine:
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise InvalidInput(f"bad FMSTACK_DATABASE_URL {url!r}: {exc}") from None
    if parsed.get_backend_name() == "sqlite":
        return _sqlite_engine(url, parsed.database)
    if parsed.get_backend_name() == "postgresql":
        try:
            return create_engine(url, pool_pre_ping=True)
        except (NoSuchModuleError, ModuleNotFoundError) as exc:
            raise Unsupported(
                f"PostgreSQL needs its driver ({exc}): pip install 'fmstack[postgres]' and use a "
                "postgresql+psycopg://USER:PASSWORD@HOST/DB URL"
            ) from None
    raise Unsupported(f"unsupported database {url!r}: use sqlite:///PATH or postgresql+psycopg://...")


def is_read_only(engine: Engine) -> bool:
    """Whether the engine was opened read-only (a SQLite file in a folder this user cannot write)."""
    return engine in _READ_ONLY


def _sqlite_engine(url: str, database: str | None) -> Engine:
    if database and database != ":memory:" and _cannot_write(Path(database)):
        engine = _read_only_engine(Path(database))
    else:
        if database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)
            _use_wal(Path(database))
        engine = create_engine(url, connect_args={"timeout": 60})
    _explain_failed_writes(engine, Path(database or "."))

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Let SQLAlchemy's "begin" hook below issue BEGIN itself: pysqlite's implicit BEGIN is
        # DEFERRED, and a deferred reader that later writes fails with SQLITE_BUSY under WAL when another
        # process committed in between. BEGIN IMMEDIATE takes the write lock up front and waits for it.
        dbapi_conn.isolation_level = None
        cursor = dbapi_conn.cursor()
        cursor.execute("PRAGMA busy_timeout=60000")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        conn.exec_driver_sql("BEGIN" if is_read_only(engine) else "BEGIN IMMEDIATE")

    return engine


def _cannot_write(database: Path) -> bool:
    """An existing database in a folder (a read-only mount, a shared folder) this user cannot write:
    SQLite needs to write the folder for its WAL and lock files even to read."""
    folder = database.parent
    if not database.is_file():
        return False
    return not (os.access(folder, os.W_OK) and os.access(database, os.W_OK))


def _read_only_engine(database: Path) -> Engine:
    """Open without creating any file: ``mode=ro``, and ``immutable=1`` when no ``-wal`` file is there
    (nothing on this machine can be writing it, and SQLite would otherwise need to create ``-shm``)."""
    params = "mode=ro" if Path(f"{database}-wal").exists() else "mode=ro&immutable=1"
    uri = f"file:{quote(database.resolve().as_posix())}?{params}"

    def connect() -> sqlite3.Connection:
        return sqlite3.connect(uri, uri=True, timeout=60, check_same_thread=False)

    engine = create_engine("sqlite://", creator=connect)
    _READ_ONLY.add(engine)
    return engine


def _explain_failed_writes(engine: Engine, database: Path) -> None:
    """A write to a read-only or full database is the user's to fix: say so, not "OperationalError"."""

    @event.listens_for(engine, "handle_error")
    def _on_error(context: Any) -> Exception | None:
        text_ = str(context.original_exception).lower()
        folder = database.parent
        if "readonly" in text_ or "read-only" in text_:
            return Unavailable(
                f"FMSTACK_HOME is read-only: {folder} cannot be written (a read-only mount, or a "
                "folder of another user); reading works, but this command writes: run it with a "
                "writable FMSTACK_HOME, or point FMSTACK_DATABASE_URL at a database you can write"
            )
        if "disk is full" in text_:
            return Unavailable(
                f"cannot write the hub database in {folder}: {context.original_exception}; free space "
                "on that disk (`fmstack hub gc` removes unreferenced blobs) and run the command again"
            )
        return None


def _use_wal(database: Path) -> None:
    """Switch the file to WAL once; the mode is stored in the file, so later connections inherit it.

    Switching needs an exclusive lock, and when two connections race to switch a new file, SQLite
    answers one of them "database is locked" at once, without waiting (its deadlock guard), so the
    switch happens here, one process at a time, rather than on every connect."""
    with FileLock(f"{database}.lock"):
        conn = sqlite3.connect(database, timeout=60)
        try:
            conn.execute("PRAGMA journal_mode=WAL")
        finally:
            conn.close()


@dataclass(frozen=True)
class MigrationHistory:
    """One Alembic history in the hub's database, with its own version table: the hub's tables, and
    the server's beside them (``fmstack.server.db``). Migrating is cheap when the database is at head,
    and safe when processes race to create it (an advisory lock on PostgreSQL, a file lock on SQLite)."""

    package: str  # the package whose ``migrations/`` folder holds the history
    version_table: str
    head: str
    pg_lock_key: int
    lock_file: str

    def current(self, engine: Engine) -> str | None:
        with engine.connect() as conn:
            try:
                return conn.execute(text(f"SELECT version_num FROM {self.version_table}")).scalar()
            except Exception:  # no table yet: this history never ran on the database
                return None

    def migrate(self, engine: Engine, lock_dir: Path | None) -> None:
        if self.current(engine) == self.head:
            return
        from alembic import command

        with self._lock(engine, lock_dir):
            if self.current(engine) != self.head:
                command.upgrade(self._config(engine), "head")

    def _config(self, engine: Engine) -> Any:
        from alembic.config import Config

        cfg = Config()
        cfg.set_main_option("script_location", str(importlib.resources.files(self.package) / "migrations"))
        cfg.attributes["engine"] = engine
        return cfg

    @contextlib.contextmanager
    def _lock(self, engine: Engine, lock_dir: Path | None) -> Iterator[None]:
        if engine.dialect.name == "postgresql":
            with engine.connect() as conn:
                conn.execute(text(f"SELECT pg_advisory_lock({self.pg_lock_key})"))
                try:
                    yield
                finally:
                    conn.execute(text(f"SELECT pg_advisory_unlock({self.pg_lock_key})"))
                    conn.commit()
            return
        if lock_dir is None:
            yield
            return
        lock_dir.mkdir(parents=True, exist_ok=True)
        with FileLock(str(lock_dir / self.lock_file)):
            yield


HUB_MIGRATIONS = MigrationHistory("fmstack.hub", "alembic_version", HEAD_REVISION, 727001, ".migrate.lock")


def session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)
