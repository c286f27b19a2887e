"""The server under failure and load, as real processes: SIGKILL mid-push, 8 pushers at once, two
server processes on one PostgreSQL database."""

from __future__ import annotations

import hashlib
import signal
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from fmstack.server import client as client_mod
from fmstack.server.client import HubClient
from tests.hub.folders import make_folder
from tests.server.conftest import RunningHub


def _versions(url: str, token: str, repo: str) -> list[dict[str, object]]:
    answer = httpx.get(f"{url}/api/v1/repos/{repo}", headers={"Authorization": f"Bearer {token}"}, timeout=30)
    if answer.status_code == 404:
        return []
    versions: list[dict[str, object]] = answer.json()["versions"]
    return versions


@pytest.mark.slow
def test_sigkill_mid_push_then_the_client_resumes_and_the_version_is_whole(
    start_hub_server: Callable[..., RunningHub], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(client_mod, "CHUNK_BYTES", 1 << 20)
    first = start_hub_server()
    data = hashlib.sha256(b"seed").digest() * (6 * (1 << 20) // 32)  # 6 MiB, 6 chunks
    src = make_folder(tmp_path / "src", {"model.safetensors": data, "config.json": "{}"})
    servers = [first]
    seen: list[int] = []

    def kill_then_restart(sent: int) -> None:
        seen.append(sent)
        if len(seen) == 2:  # after two chunks of the big file: the server dies without warning
            first.stop(signal.SIGKILL)
            assert _versions_absent(first, tmp_path)  # nothing visible: the version is not committed
            servers.append(
                start_hub_server(home=first.home, port=int(first.url.rsplit(":", 1)[1]), admin=None)
            )

    with HubClient(first.url, first.token) as pusher:
        version = pusher.push("admin/big", src, "model", progress=kill_then_restart)
    assert version["number"] == 1 and version["file_count"] == 2
    assert pusher.bytes_sent < len(data) + 2 * (1 << 20)  # resumed, not started over
    with HubClient(servers[-1].url, first.token) as puller:
        puller.pull("admin/big", tmp_path / "dest")
    assert (tmp_path / "dest" / "model.safetensors").read_bytes() == data


def _versions_absent(server: RunningHub, tmp_path: Path) -> bool:
    """Read the dead server's hub directly: no version of the repo exists yet."""
    from fmstack.hub import Hub
    from fmstack.settings import Settings

    with Hub(Settings.at(server.home)) as hub:
        return all(r.repo != "admin/big" for r in hub.ls())


def _push_many(urls: list[str], token: str, tmp_path: Path, count: int) -> list[dict[str, object]]:
    def push(i: int) -> dict[str, object]:
        src = make_folder(tmp_path / f"src-{i}", {"w.safetensors": f"pusher {i}" * 1000, "shared.json": "{}"})
        with HubClient(urls[i % len(urls)], token) as pusher:
            return pusher.push("admin/shared", src, "model", message=f"pusher {i}")

    with ThreadPoolExecutor(count) as pool:
        return list(pool.map(push, range(count)))


@pytest.mark.slow
def test_eight_clients_pushing_to_one_repo_get_distinct_numbers(
    hub_server: RunningHub, tmp_path: Path
) -> None:
    results = _push_many([hub_server.url], hub_server.token, tmp_path, 8)
    assert sorted(int(str(r["number"])) for r in results) == list(range(1, 9))
    stored = _versions(hub_server.url, hub_server.token, "admin/shared")
    assert sorted(str(v["message"]) for v in stored) == sorted(f"pusher {i}" for i in range(8))


@pytest.mark.slow
@pytest.mark.postgres
def test_two_server_processes_on_one_postgresql_database(
    start_hub_server: Callable[..., RunningHub], postgres_database: str, tmp_path: Path
) -> None:
    store = str(tmp_path / "shared-blobs")
    one = start_hub_server(database_url=postgres_database, store_url=store)
    two = start_hub_server(database_url=postgres_database, store_url=store, admin=None)
    results = _push_many([one.url, two.url], one.token, tmp_path, 8)
    assert sorted(int(str(r["number"])) for r in results) == list(range(1, 9))
    assert len(_versions(two.url, one.token, "admin/shared")) == 8
    with HubClient(two.url, one.token) as puller:  # what one server took, the other serves
        puller.pull("admin/shared:1", tmp_path / "dest")
    assert (tmp_path / "dest" / "shared.json").read_text() == "{}"
