"""The Alembic migrations build exactly the schema the ORM declares, on both backends."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from fmstack.hub import Hub
from fmstack.hub.db import HEAD_REVISION, current_revision
from fmstack.hub.schema import Base
from fmstack.settings import Settings


def test_migrations_match_the_orm(backend_settings: Settings) -> None:
    with Hub(backend_settings) as hub:
        assert current_revision(hub.engine) == HEAD_REVISION
        with hub.engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert diff == [], "schema.py changed without a migration: add one under hub/migrations/versions"


def test_reopening_a_current_hub_runs_no_migration(backend_settings: Settings) -> None:
    Hub(backend_settings).close()
    with Hub(backend_settings) as hub:
        assert current_revision(hub.engine) == HEAD_REVISION
