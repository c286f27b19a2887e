"""Alembic environment of the server's tables: runs on the engine ``SERVER_MIGRATIONS.migrate`` passes in,
with its own version table so that the hub's history and the server's never touch."""

from alembic import context

from fmstack.server.db import SERVER_MIGRATIONS
from fmstack.server.schema import ServerBase

engine = context.config.attributes["engine"]
with engine.begin() as connection:
    context.configure(
        connection=connection,
        target_metadata=ServerBase.metadata,
        version_table=SERVER_MIGRATIONS.version_table,
        render_as_batch=True,
    )
    context.run_migrations()
