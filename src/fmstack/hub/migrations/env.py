"""Alembic environment: runs migrations on the engine that ``HUB_MIGRATIONS.migrate`` (hub/db.py) passes in."""

from alembic import context

from fmstack.hub.schema import Base

engine = context.config.attributes["engine"]
with engine.begin() as connection:
    context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True)
    context.run_migrations()
