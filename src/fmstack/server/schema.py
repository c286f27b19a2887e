"""SQL tables of the hub server: accounts (users and organisations), memberships, tokens, the audit log.

They live in the hub's database next to the hub's own tables but in their own metadata, with their own
Alembic history (``server/migrations``, version table ``fmstack_server_version``): the hub knows nothing
of accounts, and a hub that never served keeps exactly the hub's schema. Accounts and namespaces meet by
name: the namespace ``acme`` belongs to the user or organisation named ``acme``.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, DateTime, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class ServerBase(DeclarativeBase):
    pass


class AccountRow(ServerBase):
    """A user or an organisation; both own the namespace of their name."""

    __tablename__ = "server_accounts"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    kind: Mapped[str] = mapped_column(String(8))  # "user" | "org"
    is_admin: Mapped[bool] = mapped_column(default=False)  # site administrator (users only)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class MembershipRow(ServerBase):
    __tablename__ = "server_memberships"
    __table_args__ = (UniqueConstraint("org_id", "user_id"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("server_accounts.id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(ForeignKey("server_accounts.id", ondelete="CASCADE"))
    role: Mapped[str] = mapped_column(String(8))  # "read" | "write" | "admin"


class TokenRow(ServerBase):
    """A token's public prefix (how it is looked up) and the sha256 of the whole token; never the token."""

    __tablename__ = "server_tokens"
    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("server_accounts.id", ondelete="CASCADE"))
    prefix: Mapped[str] = mapped_column(String(32), unique=True)
    token_sha256: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(100), default="")
    scopes: Mapped[str] = mapped_column(String(64))  # space-separated, e.g. "read write"
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class AuditRow(ServerBase):
    """One write: who (user and token prefix) did what to which target, when."""

    __tablename__ = "server_audit"
    __table_args__ = (Index("ix_server_audit_at", "at"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    actor: Mapped[str] = mapped_column(String(100))
    token_prefix: Mapped[str] = mapped_column(String(32), default="")
    action: Mapped[str] = mapped_column(String(32))
    target: Mapped[str] = mapped_column(String(300))
    detail: Mapped[dict[str, object]] = mapped_column(JSON)
    source: Mapped[str] = mapped_column(Text, default="")  # the client address, or "cli"


class UploadClaimRow(ServerBase):
    """A blob this user proved to hold by uploading its bytes: they may name it in a version even if
    no version they can read holds it (content addressing must not hand out others' private bytes)."""

    __tablename__ = "server_upload_claims"
    __table_args__ = (UniqueConstraint("user", "sha256"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    user: Mapped[str] = mapped_column(String(100))
    sha256: Mapped[str] = mapped_column(String(64))
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
