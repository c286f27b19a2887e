"""Migration s0004 builds exactly the edge tables of ``server/edge/schema.py``."""

from __future__ import annotations

from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Table

from fmstack.server.app import open_hub
from fmstack.server.edge import schema
from fmstack.server.schema import ServerBase
from fmstack.server.settings import ServerSettings
from fmstack.settings import Settings


def test_migration_builds_the_edge_tables(tmp_path: Path) -> None:
    hub, _ = open_hub(ServerSettings(hub=Settings.at(tmp_path)))
    try:
        rows = (schema.EdgeChannelRow, schema.EdgeMetadataRow, schema.EdgeTargetRow, schema.EdgeBundleRow)
        ours = {row.__tablename__ for row in (*rows, schema.EdgeDeviceRow)}

        def only_ours(obj: object, name: str | None, type_: str, reflected: bool, compare_to: object) -> bool:
            table = obj if isinstance(obj, Table) else getattr(obj, "table", None)
            return isinstance(table, Table) and table.name in ours

        with hub.engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"include_object": only_ours})
            assert compare_metadata(context, ServerBase.metadata) == []
    finally:
        hub.close()
