"""upload claims: which user proved to hold which blob

Revision ID: s0002
Revises: s0001
Create Date: 2026-12-07 05:20:00
"""

import sqlalchemy as sa
from alembic import op

revision = "s0002"
down_revision = "s0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "server_upload_claims",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user", sa.String(length=100), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("user", "sha256"),
    )


def downgrade() -> None:
    op.drop_table("server_upload_claims")
