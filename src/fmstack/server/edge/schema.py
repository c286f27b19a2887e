"""SQL tables of edge channels, in the server's metadata (migration s0004).

A channel (``stable``) belongs to the namespace of its first publish. It holds every TUF metadata
version ever published (devices fetch ``N.root.json`` up the chain, and the newest timestamp), the
targets devices download (generated files inline; a version's own files stay the hub's blobs), the
history of bundles (what ``fmstack edge rollback`` republishes) and the last report of each device.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, DateTime, ForeignKey, Index, LargeBinary, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from fmstack.server.schema import ServerBase


class EdgeChannelRow(ServerBase):
    __tablename__ = "server_edge_channels"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    namespace: Mapped[str] = mapped_column(String(100))  # who may publish: writers of this namespace
    repo: Mapped[str] = mapped_column(String(300))  # the current bundle's repo: who may read the channel
    created_by: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class EdgeMetadataRow(ServerBase):
    """One signed TUF metadata file (root, targets, snapshot, timestamp), exactly as uploaded."""

    __tablename__ = "server_edge_metadata"
    __table_args__ = (UniqueConstraint("channel_id", "role", "version"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    channel_id: Mapped[int] = mapped_column(ForeignKey("server_edge_channels.id", ondelete="CASCADE"))
    role: Mapped[str] = mapped_column(String(16))
    version: Mapped[int] = mapped_column()
    body: Mapped[bytes] = mapped_column(LargeBinary)


class EdgeTargetRow(ServerBase):
    """A file devices may download by its sha256: ``body`` for generated files, None for a blob."""

    __tablename__ = "server_edge_targets"
    __table_args__ = (UniqueConstraint("channel_id", "sha256"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    channel_id: Mapped[int] = mapped_column(ForeignKey("server_edge_channels.id", ondelete="CASCADE"))
    sha256: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(BigInteger)  # a model file may pass 2 GiB
    body: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)


class EdgeBundleRow(ServerBase):
    __tablename__ = "server_edge_bundles"
    __table_args__ = (UniqueConstraint("channel_id", "version"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    channel_id: Mapped[int] = mapped_column(ForeignKey("server_edge_channels.id", ondelete="CASCADE"))
    version: Mapped[int] = mapped_column()
    ref: Mapped[str] = mapped_column(String(300))
    rollout: Mapped[int] = mapped_column()
    published_by: Mapped[str] = mapped_column(String(100))
    published_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class EdgeDeviceRow(ServerBase):
    """The last report of one device on one channel."""

    __tablename__ = "server_edge_devices"
    __table_args__ = (
        UniqueConstraint("channel_id", "device_id"),
        Index("ix_server_edge_devices_reported_at", "reported_at"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    channel_id: Mapped[int] = mapped_column(ForeignKey("server_edge_channels.id", ondelete="CASCADE"))
    device_id: Mapped[str] = mapped_column(String(100))
    version: Mapped[int | None] = mapped_column(nullable=True)
    ref: Mapped[str | None] = mapped_column(String(300), nullable=True)
    health: Mapped[str] = mapped_column(String(16))
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    address: Mapped[str] = mapped_column(String(64))
    reported_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
