"""edge channels: signed TUF metadata, targets, bundle history and device reports

Revision ID: s0004
Revises: s0003
Create Date: 2026-12-07 13:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "s0004"
down_revision = "s0003"
branch_labels = None
depends_on = None


def _channel() -> sa.Column:  # type: ignore[type-arg]
    return sa.Column("channel_id", sa.Integer(), nullable=False)


def _fk() -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(["channel_id"], ["server_edge_channels.id"], ondelete="CASCADE")


def upgrade() -> None:
    op.create_table(
        "server_edge_channels",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("namespace", sa.String(length=100), nullable=False),
        sa.Column("repo", sa.String(length=300), nullable=False),
        sa.Column("created_by", sa.String(length=100), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("name"),
    )
    op.create_table(
        "server_edge_metadata",
        sa.Column("id", sa.Integer(), nullable=False),
        _channel(),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("body", sa.LargeBinary(), nullable=False),
        _fk(),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("channel_id", "role", "version"),
    )
    op.create_table(
        "server_edge_targets",
        sa.Column("id", sa.Integer(), nullable=False),
        _channel(),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("body", sa.LargeBinary(), nullable=True),
        _fk(),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("channel_id", "sha256"),
    )
    op.create_table(
        "server_edge_bundles",
        sa.Column("id", sa.Integer(), nullable=False),
        _channel(),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("ref", sa.String(length=300), nullable=False),
        sa.Column("rollout", sa.Integer(), nullable=False),
        sa.Column("published_by", sa.String(length=100), nullable=False),
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=False),
        _fk(),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("channel_id", "version"),
    )
    op.create_table(
        "server_edge_devices",
        sa.Column("id", sa.Integer(), nullable=False),
        _channel(),
        sa.Column("device_id", sa.String(length=100), nullable=False),
        sa.Column("version", sa.Integer(), nullable=True),
        sa.Column("ref", sa.String(length=300), nullable=True),
        sa.Column("health", sa.String(length=16), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("address", sa.String(length=64), nullable=False),
        sa.Column("reported_at", sa.DateTime(timezone=True), nullable=False),
        _fk(),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("channel_id", "device_id"),
    )
    op.create_index("ix_server_edge_devices_reported_at", "server_edge_devices", ["reported_at"])


def downgrade() -> None:
    op.drop_index("ix_server_edge_devices_reported_at", table_name="server_edge_devices")
    for table in (
        "server_edge_devices",
        "server_edge_bundles",
        "server_edge_targets",
        "server_edge_metadata",
        "server_edge_channels",
    ):
        op.drop_table(table)
