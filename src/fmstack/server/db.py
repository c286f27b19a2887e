"""The server's tables in the hub's database: brought to the head of the server's own Alembic history
(its own version table) when a server, or a ``fmstack server`` command, opens the hub."""

from __future__ import annotations

from fmstack.hub.db import MigrationHistory

SERVER_MIGRATIONS = MigrationHistory(
    "fmstack.server",
    version_table="fmstack_server_version",
    head="s0004",
    pg_lock_key=727002,  # the hub's own history holds 727001
    lock_file=".server-migrate.lock",
)
