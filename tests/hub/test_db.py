"""The Alembic migrations build exactly the schema the ORM declares, on both backends; SQLite files
open in WAL mode even when many engines open a new one at once, and read-only where the home cannot
be written."""

from __future__ import annotations

import contextlib
import json
import sqlite3
import threading
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import text

from fmstack.cli import main as cli_main
from fmstack.errors import Unavailable
from fmstack.hub import Hub
from fmstack.hub.db import HUB_MIGRATIONS, create_hub_engine
from fmstack.hub.schema import Base
from fmstack.settings import Settings
from tests.hub.conftest import METADATA_BACKENDS
from tests.hub.folders import make_folder
from tests.hub.mounts import read_only


@pytest.mark.parametrize("backend_settings", METADATA_BACKENDS, indirect=True)
def test_migrations_match_the_orm(backend_settings: Settings) -> None:
    with Hub(backend_settings) as hub:
        assert HUB_MIGRATIONS.current(hub.engine) == HUB_MIGRATIONS.head
        with hub.engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert diff == [], "schema.py changed without a migration: add one under hub/migrations/versions"


@pytest.mark.parametrize("backend_settings", METADATA_BACKENDS, indirect=True)
def test_reopening_a_current_hub_runs_no_migration(backend_settings: Settings) -> None:
    Hub(backend_settings).close()
    with Hub(backend_settings) as hub:
        assert HUB_MIGRATIONS.current(hub.engine) == HUB_MIGRATIONS.head


def test_engines_opening_a_new_sqlite_file_at_once_all_succeed(tmp_path: Path) -> None:
    # Switching a new file to WAL needs an exclusive lock, and SQLite refuses a racing switcher at
    # once ("database is locked") rather than waiting: unguarded, about 6 rounds in 100 failed here, so
    # 60 rounds catch a regression 97 times in 100.
    openers = 8
    for round_ in range(60):
        database, barrier, errors = tmp_path / f"r{round_}.db", threading.Barrier(openers), []
        threads = [
            threading.Thread(target=_open_and_write, args=(database, barrier, errors)) for _ in range(openers)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
        assert not errors, f"round {round_}: {errors[0]}"
        with contextlib.closing(sqlite3.connect(database)) as conn:
            assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
            assert conn.execute("SELECT count(*) FROM t").fetchone() == (openers,)


def _open_and_write(database: Path, barrier: threading.Barrier, errors: list[Exception]) -> None:
    barrier.wait(timeout=30)
    engine = None
    try:
        engine = create_hub_engine(f"sqlite:///{database}")
        with engine.begin() as conn:
            conn.execute(text("CREATE TABLE IF NOT EXISTS t (x)"))
            conn.execute(text("INSERT INTO t VALUES (1)"))
    except Exception as exc:  # reported by the test, with its round
        errors.append(exc)
    finally:
        if engine is not None:
            engine.dispose()


def test_a_read_only_home_can_be_read_and_refuses_writes_clearly(
    fmstack_home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # A shared, read-only mount of a hub another machine writes: listing, info, pull and fsck work;
    # anything that writes is refused with what to do, not an internal error.
    with Hub(Settings.from_env()) as hub:
        hub.push("acme/m", make_folder(tmp_path / "src", {"w.bin": "weights"}), "model", alias="prod")
        hub.runs.start("train", {})
    before = sorted(p.name for p in fmstack_home.iterdir())
    with read_only(fmstack_home):
        assert json.loads(_cli(capsys, 0, "hub", "ls", "--json"))[0]["repo"] == "acme/m"
        assert json.loads(_cli(capsys, 0, "hub", "info", "acme/m@prod", "--json"))["aliases"] == ["prod"]
        _cli(capsys, 0, "hub", "pull", "acme/m", str(tmp_path / "out"))
        assert (tmp_path / "out/w.bin").read_text() == "weights"
        assert json.loads(_cli(capsys, 0, "hub", "fsck", "--json"))["ok"]
        assert json.loads(_cli(capsys, 0, "hub", "gc", "--dry-run", "--json"))["removed"] == []
        assert len(json.loads(_cli(capsys, 0, "runs", "ls", "--json"))) == 1
        for args in (
            ("hub", "push", "acme/m", str(tmp_path / "src"), "--kind", "model"),
            ("hub", "tag", "acme/m:1", "staging"),
            ("hub", "gc"),
        ):
            err = _cli(capsys, 1, *args)
            assert "FMSTACK_HOME is read-only" in err and "reading works" in err, (args, err)
        with Hub(Settings.from_env()) as hub:
            assert hub.read_only
            with pytest.raises(Unavailable, match="FMSTACK_HOME is read-only"):
                hub.runs.start("train", {})
            with pytest.raises(Unavailable, match="FMSTACK_HOME is read-only"):
                hub.checkout("acme/m")
        assert sorted(p.name for p in fmstack_home.iterdir()) == before


def _cli(capsys: pytest.CaptureFixture[str], expected: int, *args: str) -> str:
    code = cli_main.main(list(args))
    out, err = capsys.readouterr()
    assert code == expected, (args, err)
    return out if expected == 0 else " ".join(err.split())
