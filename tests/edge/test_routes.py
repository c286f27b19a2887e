"""End to end through a real hub server: ``fmstack edge publish`` signs and uploads, an agent installs
over HTTP and reports, ``fmstack edge devices`` shows it, ``fmstack edge rollback`` republishes the
previous version; the server refuses a publish signed with a key the channel does not trust."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import httpx
import pytest

from fmstack.cli.main import main
from fmstack.edge.bundle import build_bundle
from fmstack.edge.keys import KeyFolder, init_keys
from fmstack.edge.repository import ChannelVersions, sign_update
from fmstack.errors import Conflict
from tests.edge.conftest import LiveHub, agent_config


def fmstack(capsys: pytest.CaptureFixture[str], *args: str) -> dict:  # type: ignore[type-arg]
    code = main([*args, "--json"])
    out = capsys.readouterr()
    assert code == 0, out.err
    result: dict = json.loads(out.out)  # type: ignore[type-arg]
    return result


def test_publish_install_report_rollback(
    live_hub: LiveHub,
    versions: dict[str, Path],
    keys: KeyFolder,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from fmstack_edge.agent import Agent

    live_hub.hub.push("acme/cls", versions["cls"], "model")  # type: ignore[attr-defined]
    live_hub.hub.push("acme/cls", versions["cls2"], "model")  # type: ignore[attr-defined]
    keys_dir = str(keys.folder)
    first = fmstack(capsys, "edge", "publish", "acme/cls:1", "--channel", "stable", "--keys", keys_dir)
    assert first["bundle"]["version"] == 1 and first["bundle"]["ref"] == "acme/cls:1"

    agent = Agent(agent_config(live_hub.url, tmp_path / "device", keys, token=live_hub.token))  # type: ignore[arg-type]
    agent.boot()
    assert agent.poll().startswith("installed bundle 1")
    current = agent.served.get()
    assert current is not None and current.version == "acme/cls:1" and current.name == "acme/cls"

    fmstack(
        capsys,
        "edge",
        "publish",
        "acme/cls:2",
        "--channel",
        "stable",
        "--rollout",
        "100%",
        "--keys",
        keys_dir,
    )
    assert agent.poll().startswith("installed bundle 2")
    # The channel pins the version it serves: removing it is refused, so gc keeps what devices download.
    hub = live_hub.hub  # type: ignore[attr-defined]
    assert hub.info("acme/cls:2").aliases == ["edge-stable"] and hub.info("acme/cls:1").aliases == []
    with pytest.raises(Conflict, match="edge-stable"):
        hub.rm("acme/cls:2")
    fleet = fmstack(capsys, "edge", "devices", "--channel", "stable")
    assert [(d["device_id"], d["version"], d["health"]) for d in fleet] == [("device-1", 2, "ok")]  # type: ignore[index]

    rolled = fmstack(capsys, "edge", "rollback", "--channel", "stable", "--keys", keys_dir)
    assert rolled["bundle"]["version"] == 3 and rolled["bundle"]["ref"] == "acme/cls:1"
    assert agent.poll().startswith("installed bundle 3")
    assert agent.served.get().version == "acme/cls:1"  # type: ignore[union-attr]
    assert hub.info("acme/cls:1").aliases == ["edge-stable"] and hub.info("acme/cls:2").aliases == []

    # A publish signed with keys the channel's root does not name: refused before anything is stored.
    other = KeyFolder.at(tmp_path / "other-keys")
    init_keys(other)
    bundle = build_bundle(
        versions["cls"], "acme/cls:1", "stable", 4, 100, lambda f, t: agent.served.get().model.outputs(t)
    )  # type: ignore[union-attr]
    update = sign_update(other, ChannelVersions(root=1, targets=3, snapshot=3, timestamp=3), bundle.targets)
    body = {
        "roots": [],
        "targets": base64.b64encode(update.targets).decode(),
        "snapshot": base64.b64encode(update.snapshot).decode(),
        "timestamp": base64.b64encode(update.timestamp).decode(),
        "files": {sha: base64.b64encode(d).decode() for sha, d in bundle.generated().items()},
    }
    headers = {"Authorization": f"Bearer {live_hub.token}"}
    refused = httpx.post(f"{live_hub.url}/api/v1/edge/channels/stable/publish", json=body, headers=headers)
    assert refused.status_code == 422 and "not signed by the keys" in refused.json()["message"]
    anonymous = httpx.post(f"{live_hub.url}/api/v1/edge/channels/stable/publish", json=body)
    assert anonymous.status_code == 401
    assert agent.poll() == "bundle 3 is current"

    # Refresh: the current bundle signed again with a new expiry; nothing new for devices to download.
    refreshed = fmstack(
        capsys, "edge", "refresh", "--channel", "stable", "--keys", keys_dir, "--expires-days", "60"
    )
    assert refreshed["refreshed"] and refreshed["bundle"]["version"] == 3
    assert refreshed["versions"] == {"root": 1, "targets": 4, "snapshot": 4, "timestamp": 4}
    assert agent.poll() == "bundle 3 is current"
    code = main(["edge", "refresh", "--channel", "stable", "--keys", str(other.folder)])
    assert code == 1 and "not signed by any of this key folder's keys" in capsys.readouterr().err

    # The channel moves to another repo of its namespace: the pin moves with it.
    hub.push("acme/other", versions["cls"], "model")
    fmstack(capsys, "edge", "publish", "acme/other:1", "--channel", "stable", "--keys", keys_dir)
    assert hub.info("acme/other:1").aliases == ["edge-stable"] and hub.info("acme/cls:1").aliases == []
