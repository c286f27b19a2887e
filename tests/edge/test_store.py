"""The edge tables on SQLite and on a real PostgreSQL: a publish stored whole, read back as devices
read it, device reports upserted, and a stale publish refused."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from fmstack.cli.edge import serve_outputs
from fmstack.edge.bundle import build_bundle
from fmstack.edge.keys import KeyFolder
from fmstack.edge.repository import ChannelVersions, sign_update
from fmstack.edge.verify import check_update
from fmstack.errors import Conflict
from fmstack.server.app import open_hub
from fmstack.server.edge.store import BundleRecord, DeviceReport, EdgeStore, Publish
from fmstack.server.settings import ServerSettings
from fmstack.settings import Settings
from tests.hub.conftest import postgres_database

__all__ = ["postgres_database"]


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    home = tmp_path / "home"
    url = f"sqlite:///{home / 'fmstack.db'}"
    if request.param == "postgres":
        url = request.getfixturevalue("postgres_database")
    return Settings(home=home, database_url=url, store_url=str(home / "blobs"))


def test_publish_read_report(database: Settings, keys: KeyFolder, versions: dict[str, Path]) -> None:
    hub, _ = open_hub(ServerSettings(hub=database))
    try:
        ref = hub.push("acme/cls", versions["cls"], "model").ref
        bundle = build_bundle(versions["cls"], ref, "stable", 1, 25, serve_outputs)
        update = sign_update(keys, ChannelVersions(), bundle.targets)
        checked = check_update(
            None, ChannelVersions(), update.roots, update.targets, update.snapshot, update.timestamp
        )
        files = {t.sha256: (t.size, t.data) for t in bundle.targets}
        record = BundleRecord(1, ref, 25, "acme", datetime.now(UTC))
        store = EdgeStore(hub.engine)
        store.publish(
            "stable",
            "acme",
            "acme/cls",
            "acme",
            Publish(checked, update.roots, update.targets, update.snapshot, update.timestamp, files, record),
        )
        channel = store.get("stable")
        assert store.versions(channel) == ChannelVersions(1, 1, 1, 1)
        assert store.metadata(channel, "timestamp", None) == update.timestamp
        assert store.metadata(channel, "root", 1) == update.roots[0]
        assert store.metadata(channel, "targets", 2) is None
        model = next(t for t in bundle.targets if t.path.endswith("model.onnx"))
        assert store.target(channel, model.sha256) == (model.size, None)  # served from the hub's blob
        assert [(b.version, b.ref, b.rollout) for b in store.bundles(channel)] == [(1, ref, 25)]
        for health in ("ok", "rejected"):
            now = datetime.now(UTC)
            store.report(channel, "device-1", DeviceReport("device-1", 1, ref, health, None, "10.0.0.2", now))
        assert [(d.device_id, d.health) for d in store.devices(channel)] == [("device-1", "rejected")]
        with pytest.raises(Conflict, match="another publish"):
            stale = store.versions(channel)
            check_update(
                update.roots[0],
                stale,
                [],
                update.targets,
                update.snapshot,
                update.timestamp,
            )
    finally:
        hub.close()
