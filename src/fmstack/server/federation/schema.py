"""SQL tables of federated fine-tuning, in the server's metadata (migration s0003).

A federation (``ns/name``) has client tokens (one per client, scoped to that federation only), numbered
rounds (one open at a time) and client updates (accepted, rejected with a reason, or late). Round state
is here and only here: the coordinator keeps nothing in memory between requests.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, DateTime, Float, ForeignKey, Index, LargeBinary, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from fmstack.server.schema import ServerBase


class FederationRow(ServerBase):
    __tablename__ = "server_federations"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)  # ns/name: also the global adapter's repo
    owner: Mapped[str] = mapped_column(String(100))
    spec: Mapped[dict[str, Any]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(16))  # "running" | "finished" | "stopped"
    round: Mapped[int] = mapped_column()  # the open round (or the last one, once finished)
    global_ref: Mapped[str | None] = mapped_column(String(300), nullable=True)
    # The server optimiser's state (FedAdam's moments) as safetensors bytes; None for FedAvg/FedProx.
    server_state: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class FedClientRow(ServerBase):
    """A client of one federation and its token (only ``sha256(token)`` is stored)."""

    __tablename__ = "server_fed_clients"
    __table_args__ = (UniqueConstraint("federation_id", "name"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    federation_id: Mapped[int] = mapped_column(ForeignKey("server_federations.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(100))
    prefix: Mapped[str] = mapped_column(String(32), unique=True)
    token_sha256: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    last_seen_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class FedRoundRow(ServerBase):
    __tablename__ = "server_fed_rounds"
    __table_args__ = (UniqueConstraint("federation_id", "number"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    federation_id: Mapped[int] = mapped_column(ForeignKey("server_federations.id", ondelete="CASCADE"))
    number: Mapped[int] = mapped_column()
    status: Mapped[str] = mapped_column(String(16))  # "open" | "closed"
    input_ref: Mapped[str | None] = mapped_column(String(300), nullable=True)  # None: fresh adapter
    output_ref: Mapped[str | None] = mapped_column(String(300), nullable=True)
    run_id: Mapped[int | None] = mapped_column(nullable=True)  # the aggregation run
    opened_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    deadline_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    closed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    metrics: Mapped[dict[str, Any]] = mapped_column(JSON)
    note: Mapped[str] = mapped_column(Text, default="")


class FedUpdateRow(ServerBase):
    __tablename__ = "server_fed_updates"
    __table_args__ = (Index("ix_server_fed_updates_round", "round_id", "client"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    round_id: Mapped[int] = mapped_column(ForeignKey("server_fed_rounds.id", ondelete="CASCADE"))
    client: Mapped[str] = mapped_column(String(100))
    status: Mapped[str] = mapped_column(String(16))  # "accepted" | "rejected" | "late"
    reason: Mapped[str] = mapped_column(Text, default="")
    examples: Mapped[int] = mapped_column()
    norm: Mapped[float | None] = mapped_column(Float, nullable=True)
    bytes: Mapped[int] = mapped_column()
    metrics: Mapped[dict[str, Any]] = mapped_column(JSON)
    update_ref: Mapped[str | None] = mapped_column(String(300), nullable=True)
    run_id: Mapped[int | None] = mapped_column(nullable=True)  # the client's training, as a run
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
