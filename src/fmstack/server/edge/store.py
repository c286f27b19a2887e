"""Edge channels in the server's database: publish (all of a publish in one transaction), read the
metadata and targets devices fetch, record device reports. Rows become plain entities here."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import sqlalchemy.exc
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session, sessionmaker

from fmstack.edge.repository import ChannelVersions
from fmstack.edge.verify import CheckedUpdate
from fmstack.errors import Conflict, NotFound
from fmstack.server.edge.schema import (
    EdgeBundleRow,
    EdgeChannelRow,
    EdgeDeviceRow,
    EdgeMetadataRow,
    EdgeTargetRow,
)


@dataclass(frozen=True)
class Channel:
    id: int
    name: str
    namespace: str
    repo: str


@dataclass(frozen=True)
class BundleRecord:
    version: int
    ref: str
    rollout: int
    published_by: str
    published_at: datetime


@dataclass(frozen=True)
class DeviceReport:
    device_id: str
    version: int | None
    ref: str | None
    health: str
    last_error: str | None
    address: str
    reported_at: datetime


@dataclass(frozen=True)
class Publish:
    """A checked publish: the metadata, the targets (sha256 -> (size, inline bytes or None for a
    blob of the version) and the bundle it makes current."""

    update: CheckedUpdate
    roots: list[bytes]
    targets: bytes
    snapshot: bytes
    timestamp: bytes
    files: dict[str, tuple[int, bytes | None]]
    bundle: BundleRecord | None  # None: a refresh (the current bundle signed again)


class EdgeStore:
    def __init__(self, engine: Engine) -> None:
        self._sessions = sessionmaker(engine, expire_on_commit=False)

    def channel(self, name: str) -> Channel | None:
        with self._sessions() as session:
            row = session.scalars(select(EdgeChannelRow).where(EdgeChannelRow.name == name)).first()
            return None if row is None else Channel(row.id, row.name, row.namespace, row.repo)

    def get(self, name: str) -> Channel:
        found = self.channel(name)
        if found is None:
            raise NotFound(
                f"no edge channel {name!r}: publish to it first (`fmstack edge publish REF --channel {name}`)"
            )
        return found

    def versions(self, channel: Channel | None) -> ChannelVersions:
        if channel is None:
            return ChannelVersions()
        with self._sessions() as session:
            rows = session.execute(
                select(EdgeMetadataRow.role, func.max(EdgeMetadataRow.version))
                .where(EdgeMetadataRow.channel_id == channel.id)
                .group_by(EdgeMetadataRow.role)
            ).all()
        return ChannelVersions(**{role: version for role, version in rows})

    def metadata(self, channel: Channel, role: str, version: int | None) -> bytes | None:
        """One metadata file; ``version`` None: the newest (the timestamp devices poll)."""
        with self._sessions() as session:
            query = select(EdgeMetadataRow.body).where(
                EdgeMetadataRow.channel_id == channel.id, EdgeMetadataRow.role == role
            )
            if version is None:
                query = query.order_by(EdgeMetadataRow.version.desc()).limit(1)
            else:
                query = query.where(EdgeMetadataRow.version == version)
            body: bytes | None = session.scalars(query).first()
            return body

    def target(self, channel: Channel, sha256: str) -> tuple[int, bytes | None] | None:
        with self._sessions() as session:
            row = session.scalars(
                select(EdgeTargetRow).where(
                    EdgeTargetRow.channel_id == channel.id, EdgeTargetRow.sha256 == sha256
                )
            ).first()
            return None if row is None else (row.size, row.body)

    def bundles(self, channel: Channel, limit: int = 50) -> list[BundleRecord]:
        with self._sessions() as session:
            rows = session.scalars(
                select(EdgeBundleRow)
                .where(EdgeBundleRow.channel_id == channel.id)
                .order_by(EdgeBundleRow.version.desc())
                .limit(limit)
            )
            return [BundleRecord(r.version, r.ref, r.rollout, r.published_by, r.published_at) for r in rows]

    def publish(self, name: str, namespace: str, repo: str, creator: str, publish: Publish) -> None:
        """Store a checked publish atomically; ``Conflict`` when another publish got there first."""
        try:
            with self._sessions.begin() as session:
                channel = session.scalars(select(EdgeChannelRow).where(EdgeChannelRow.name == name)).first()
                if channel is None:
                    channel = EdgeChannelRow(
                        name=name, namespace=namespace, repo=repo, created_by=creator, created_at=_now()
                    )
                    session.add(channel)
                    session.flush()
                channel.repo = repo
                self._add_metadata(session, channel.id, publish)
                known = set(
                    session.scalars(
                        select(EdgeTargetRow.sha256).where(EdgeTargetRow.channel_id == channel.id)
                    )
                )
                for sha, (size, body) in publish.files.items():
                    if sha not in known:
                        session.add(EdgeTargetRow(channel_id=channel.id, sha256=sha, size=size, body=body))
                b = publish.bundle
                if b is not None:
                    session.add(
                        EdgeBundleRow(
                            channel_id=channel.id,
                            version=b.version,
                            ref=b.ref,
                            rollout=b.rollout,
                            published_by=b.published_by,
                            published_at=b.published_at,
                        )
                    )
        except sqlalchemy.exc.IntegrityError:
            raise Conflict(f"another publish to channel {name!r} got there first: publish again") from None

    @staticmethod
    def _add_metadata(session: Session, channel_id: int, publish: Publish) -> None:
        update = publish.update
        entries = [
            ("root", md.signed.version, data) for md, data in zip(update.roots, publish.roots, strict=True)
        ]
        entries += [
            ("targets", update.targets.signed.version, publish.targets),
            ("snapshot", update.snapshot.signed.version, publish.snapshot),
            ("timestamp", update.timestamp.signed.version, publish.timestamp),
        ]
        for role, version, body in entries:
            session.add(EdgeMetadataRow(channel_id=channel_id, role=role, version=version, body=body))

    def report(self, channel: Channel, device_id: str, report: DeviceReport) -> None:
        try:
            self._report(channel, device_id, report)
        except sqlalchemy.exc.IntegrityError:  # the device's first two reports raced: the row exists now
            self._report(channel, device_id, report)

    def _report(self, channel: Channel, device_id: str, report: DeviceReport) -> None:
        with self._sessions.begin() as session:
            row = session.scalars(
                select(EdgeDeviceRow).where(
                    EdgeDeviceRow.channel_id == channel.id, EdgeDeviceRow.device_id == device_id
                )
            ).first()
            if row is None:
                row = EdgeDeviceRow(channel_id=channel.id, device_id=device_id)
                session.add(row)
            row.version, row.ref, row.health = report.version, report.ref, report.health
            row.last_error, row.address, row.reported_at = (
                report.last_error,
                report.address,
                report.reported_at,
            )

    def devices(self, channel: Channel, limit: int = 1000) -> list[DeviceReport]:
        with self._sessions() as session:
            rows = session.scalars(
                select(EdgeDeviceRow)
                .where(EdgeDeviceRow.channel_id == channel.id)
                .order_by(EdgeDeviceRow.reported_at.desc())
                .limit(limit)
            )
            return [
                DeviceReport(r.device_id, r.version, r.ref, r.health, r.last_error, r.address, r.reported_at)
                for r in rows
            ]


def _now() -> datetime:
    return datetime.now(UTC)
