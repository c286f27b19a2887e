"""The native transfer API (routes/transfer.py, uploads.py, commits.py) driven by the real client
(server/client.py) against the app in-process: only missing blobs travel, bytes are verified before
anything is visible, uploads resume, bad manifests and oversized files are refused. Each test runs
with the server's blobs in a local folder and on a real S3 server (SeaweedFS)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from fmstack.errors import Conflict, Forbidden, IntegrityError, InvalidInput, Unavailable
from fmstack.server.app import create_app
from fmstack.server.client import HubClient
from fmstack.server.settings import ServerSettings
from fmstack.settings import Settings
from tests.hub.folders import make_folder
from tests.hub.test_blobs import overwrite_blob
from tests.server.conftest import AppHub


@pytest.fixture(params=["local", "s3"])
def app_store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Every transfer test runs with the server's blobs in a local folder and on S3 (SeaweedFS)."""
    if request.param == "s3":
        return str(request.getfixturevalue("s3_store_url"))
    return str(tmp_path / "app-home" / "blobs")


def client(app_hub: AppHub, token: str | None = None) -> HubClient:
    # Server-side exceptions become what a real client sees (a 500, a cut stream), not a raise here.
    http = TestClient(app_hub.client.app, raise_server_exceptions=False)
    return HubClient("http://testserver", token or app_hub.token, http=http)


def test_push_then_pull_roundtrip_as_the_pushing_user(app_hub: AppHub, tmp_path: Path) -> None:
    ann = app_hub.user("ann", "write")
    src = make_folder(
        tmp_path / "src", {"config.json": "{}", "sub/w.safetensors": b"\x00" * 5000, "empty": b""}
    )
    pushed = client(app_hub, ann).push("ann/m", src, "model", message="first", alias="prod")
    assert pushed["number"] == 1 and pushed["creator"] == "ann"
    dest = tmp_path / "dest"
    client(app_hub, ann).pull("ann/m@prod", dest)
    for rel in ("config.json", "sub/w.safetensors", "empty"):
        assert (dest / rel).read_bytes() == (src / rel).read_bytes()
    entry = app_hub.accounts.audit_log()[0]
    assert (entry.actor, entry.action, entry.target, entry.detail["alias"]) == (
        "ann",
        "push",
        "ann/m:1",
        "prod",
    )
    assert entry.token_prefix and entry.token_prefix in ann


def test_a_second_push_sends_only_the_new_bytes(app_hub: AppHub, tmp_path: Path) -> None:
    base = make_folder(tmp_path / "base", {"model.safetensors": bytes(range(256)) * 4000})
    first = client(app_hub)
    first.push("admin/base", base, "model")
    assert first.bytes_sent == 256 * 4000
    adapter = make_folder(
        tmp_path / "adapter", {"model.safetensors": bytes(range(256)) * 4000, "a.safetensors": b"x" * 100}
    )
    second = client(app_hub)
    version = second.push("admin/adapter", adapter, "adapter")
    assert second.bytes_sent == 100 and version["file_count"] == 2


def test_bytes_that_do_not_match_their_sha256_are_refused_and_nothing_is_visible(
    app_hub: AppHub, tmp_path: Path
) -> None:
    claimed = hashlib.sha256(b"the real bytes").hexdigest()
    http = app_hub.client
    answer = http.put(
        f"/api/v1/uploads/{claimed}", params={"size": 5}, content=b"wrong", headers=app_hub.headers()
    )
    assert answer.status_code == 422 and answer.json()["error"] == "IntegrityError"
    assert not app_hub.hub.blobs.has(claimed)
    manifest = {"kind": "model", "files": [{"path": "w.safetensors", "sha256": claimed, "size": 5}]}
    commit = http.post("/api/v1/repos/admin/m/versions", json=manifest, headers=app_hub.headers())
    assert commit.status_code == 409
    assert http.get("/api/v1/repos/admin/m", headers=app_hub.headers()).status_code == 404


def test_an_interrupted_upload_resumes_where_it_stopped(app_hub: AppHub, tmp_path: Path) -> None:
    data = bytes(range(256)) * 64
    sha = hashlib.sha256(data).hexdigest()
    http, headers = app_hub.client, app_hub.headers()
    half = http.put(
        f"/api/v1/uploads/{sha}", params={"size": len(data)}, content=data[:1000], headers=headers
    )
    assert half.json() == {"sha256": sha, "size": len(data), "received": 1000, "complete": False}
    wrong = http.put(
        f"/api/v1/uploads/{sha}", params={"size": len(data), "offset": 0}, content=data, headers=headers
    )
    assert wrong.status_code == 409 and "offset 1000" in wrong.json()["message"]
    src = make_folder(tmp_path / "src", {"w.safetensors": data})
    pusher = client(app_hub)
    pusher.push("admin/m", src, "model")
    assert pusher.bytes_sent == len(data) - 1000  # the client asked the plan and sent the rest only
    assert app_hub.hub.blobs.has(sha)


@pytest.mark.parametrize("path", ["../escape", "/etc/passwd", "a/../../b", "a\\..\\b", "a\x00b", "..", "./"])
def test_manifest_paths_that_escape_are_refused(app_hub: AppHub, path: str) -> None:
    manifest = {"kind": "model", "files": [{"path": path, "sha256": "0" * 64, "size": 1}]}
    answer = app_hub.client.post("/api/v1/repos/admin/m/push/plan", json=manifest, headers=app_hub.headers())
    assert answer.status_code == 422, answer.text


@pytest.mark.parametrize(
    "url",
    [
        "/api/v1/repos/%2e%2e/m",
        "/api/v1/repos/admin/%2e%2e",
        "/api/v1/repos/admin/..%2f..%2fetc",
        "/api/v1/repos/admin/m%00x",
        "/api/v1/repos/admin/m%5c..",
        "/api/v1/repos/admin/m/versions/..%2f1",
        "/api/v1/uploads/..%2f..%2fetc%2fpasswd?size=1",
        "/api/v1/repos/admin/m/blobs/..%2f" + "a" * 61,
    ],
)
def test_traversal_in_path_parameters_is_refused(app_hub: AppHub, url: str) -> None:
    answer = app_hub.client.get(url, headers=app_hub.headers())
    assert answer.status_code in (404, 422), answer.text


def test_pickle_weights_are_refused_for_models(app_hub: AppHub, tmp_path: Path) -> None:
    src = make_folder(tmp_path / "src", {"pytorch_model.bin": b"pickle", "config.json": "{}"})
    with pytest.raises(InvalidInput, match="pickle"):
        client(app_hub).push("admin/m", src, "model")


def test_an_oversized_file_gets_413_before_any_upload(tmp_path: Path) -> None:
    app = create_app(ServerSettings(hub=Settings.at(tmp_path / "home"), max_upload_bytes=1000))
    app.state.accounts.add("admin", "user", admin=True)
    token = app.state.accounts.create_token("admin", ["write"]).token
    http = TestClient(app)
    manifest = {"kind": "model", "files": [{"path": "w.safetensors", "sha256": "a" * 64, "size": 1001}]}
    headers = {"Authorization": f"Bearer {token}"}
    assert http.post("/api/v1/repos/admin/m/push/plan", json=manifest, headers=headers).status_code == 413
    big = http.put(f"/api/v1/uploads/{'a' * 64}", params={"size": 10}, content=b"x" * 2000, headers=headers)
    assert big.status_code == 413  # more bytes than declared


def test_a_users_unfinished_uploads_are_bounded(tmp_path: Path) -> None:
    """A write token cannot fill the disk with uploads it never finishes; other users are not charged."""
    app = create_app(ServerSettings(hub=Settings.at(tmp_path / "home"), max_pending_bytes=1500))
    accounts = app.state.accounts
    http = TestClient(app)
    for user in ("ann", "bob"):
        accounts.add(user, "user")
    ann, bob = (
        {"Authorization": f"Bearer {accounts.create_token(u, ['write']).token}"} for u in ("ann", "bob")
    )
    first, second = b"a" * 1000, b"b" * 700
    sha1, sha2 = (hashlib.sha256(d).hexdigest() for d in (first, second))

    def put(sha: str, data: bytes, offset: int, size: int, headers: dict[str, str]) -> int:
        params = {"size": size, "offset": offset}
        return http.put(f"/api/v1/uploads/{sha}", params=params, content=data, headers=headers).status_code

    assert put(sha1, first[:900], 0, 1000, ann) == 200  # 900 bytes held, unfinished
    refused = http.put(f"/api/v1/uploads/{sha2}", params={"size": 700}, content=second, headers=ann)
    assert refused.status_code == 413 and "--max-pending-bytes" in refused.text
    assert put(sha2, second, 0, 700, bob) == 200  # bob's budget is his own
    assert put(sha1, first[900:], 900, 1000, ann) == 200  # finishing frees ann's budget...
    assert put(sha2, second, 0, 700, ann) == 200  # ... for the next file


def test_a_read_token_cannot_upload_or_commit(app_hub: AppHub, tmp_path: Path) -> None:
    reader = app_hub.user("bob", "read")
    src = make_folder(tmp_path / "src", {"w.safetensors": b"abc"})
    with pytest.raises(Forbidden):
        client(app_hub, reader).push("bob/m", src, "model")


def test_pull_resumes_with_range(app_hub: AppHub, tmp_path: Path) -> None:
    data = bytes(range(256)) * 100
    src = make_folder(tmp_path / "src", {"w.safetensors": data})
    client(app_hub).push("admin/m", src, "model")
    sha = hashlib.sha256(data).hexdigest()
    part = app_hub.client.get(
        f"/api/v1/repos/admin/m/blobs/{sha}", headers={**app_hub.headers(), "Range": "bytes=100-"}
    )
    assert part.status_code == 206 and part.content == data[100:]
    assert part.headers["content-range"] == f"bytes 100-{len(data) - 1}/{len(data)}"


def test_alias_moves_and_removals_are_audited(app_hub: AppHub, tmp_path: Path) -> None:
    src = make_folder(tmp_path / "src", {"w.safetensors": b"abc"})
    client(app_hub).push("admin/m", src, "model")
    http, headers = app_hub.client, app_hub.headers()
    assert (
        http.put("/api/v1/repos/admin/m/aliases/prod", json={"version": 1}, headers=headers).status_code
        == 200
    )
    assert http.delete("/api/v1/repos/admin/m/versions/1", headers=headers).status_code == 409  # aliased
    assert http.delete("/api/v1/repos/admin/m/aliases/prod", headers=headers).status_code == 200
    assert http.delete("/api/v1/repos/admin/m/versions/latest", headers=headers).status_code == 200
    actions = [e.action for e in app_hub.accounts.audit_log()]
    assert actions == ["delete", "untag", "tag", "push"]


def test_two_pushes_of_a_conflicting_kind_are_refused(app_hub: AppHub, tmp_path: Path) -> None:
    src = make_folder(tmp_path / "src", {"w.safetensors": b"abc"})
    client(app_hub).push("admin/m", src, "model")
    with pytest.raises(Conflict):
        client(app_hub).push("admin/m", src, "dataset")


def test_a_corrupted_download_is_never_made_visible(app_hub: AppHub, tmp_path: Path) -> None:
    data = b"good bytes" * 1000
    src = make_folder(tmp_path / "src", {"w.safetensors": data})
    client(app_hub).push("admin/m", src, "model")
    sha = hashlib.sha256(data).hexdigest()
    overwrite_blob(app_hub.hub.blobs, sha, b"bad bytes!" * 1000)
    with pytest.raises((IntegrityError, Unavailable)):
        client(app_hub).pull("admin/m", tmp_path / "dest")
    assert not (tmp_path / "dest" / "w.safetensors").exists()


def test_a_path_that_is_a_file_and_a_folder_is_refused(app_hub: AppHub) -> None:
    files = [{"path": "a", "sha256": "0" * 64, "size": 1}, {"path": "a/b", "sha256": "1" * 64, "size": 1}]
    manifest = {"kind": "model", "files": files}
    answer = app_hub.client.post("/api/v1/repos/admin/m/push/plan", json=manifest, headers=app_hub.headers())
    assert answer.status_code == 422 and "also a folder" in answer.json()["message"]


def test_a_bad_alias_or_card_is_refused_at_commit(app_hub: AppHub, tmp_path: Path) -> None:
    src = make_folder(tmp_path / "src", {"w.safetensors": b"abc"})
    with pytest.raises(InvalidInput):
        client(app_hub).push("admin/m", src, "model", alias="latest")
    assert app_hub.client.get("/api/v1/repos/admin/m", headers=app_hub.headers()).status_code == 404


def test_partial_uploads_given_up_on_are_swept(app_hub: AppHub) -> None:
    data = b"x" * 100
    sha = hashlib.sha256(data).hexdigest()
    app_hub.client.put(
        f"/api/v1/uploads/{sha}", params={"size": 100}, content=data[:10], headers=app_hub.headers()
    )
    uploads = app_hub.client.app.state.uploads  # type: ignore[attr-defined]
    assert uploads.sweep() == []  # recent: kept for a resume
    assert [p.name for p in uploads.sweep(older_than_s=-1)] == [f"{sha}.admin.part"]
    state = app_hub.client.get(
        f"/api/v1/uploads/{sha}", params={"size": 100}, headers=app_hub.headers()
    ).json()
    assert state["received"] == 0


def test_naming_a_digest_is_no_proof_of_holding_its_bytes(app_hub: AppHub, tmp_path: Path) -> None:
    secret = b"ann's private weights" * 100
    sha = hashlib.sha256(secret).hexdigest()
    ann = app_hub.user("ann", "write")
    client(app_hub, ann).push("ann/private", make_folder(tmp_path / "a", {"w.safetensors": secret}), "model")
    bob = app_hub.user("bob", "write")
    manifest = {"kind": "model", "files": [{"path": "w.safetensors", "sha256": sha, "size": len(secret)}]}
    http = app_hub.client
    # Bob learned the digest but never had the bytes: he may not make a version of them ...
    assert (
        http.post(
            "/api/v1/repos/bob/stolen/versions", json=manifest, headers=app_hub.headers(bob)
        ).status_code
        == 409
    )
    # ... the plan asks him for the bytes, the stored blob does not count as his upload ...
    plan = http.post("/api/v1/repos/bob/stolen/push/plan", json=manifest, headers=app_hub.headers(bob)).json()
    assert [b["sha256"] for b in plan["missing"]] == [sha] and plan["missing"][0]["complete"] is False
    state = http.get(
        f"/api/v1/uploads/{sha}", params={"size": len(secret)}, headers=app_hub.headers(bob)
    ).json()
    assert state["complete"] is False
    wrong = http.put(
        f"/api/v1/uploads/{sha}",
        params={"size": len(secret)},
        content=b"x" * len(secret),
        headers=app_hub.headers(bob),
    )
    assert wrong.status_code == 422
    # ... and once he sends them (he has them after all), they are his to name.
    mine = http.post(
        "/api/v1/repos/ann/private/push/plan", json=manifest, headers=app_hub.headers(ann)
    ).json()
    assert mine["missing"] == []  # Ann's own: nothing to send
    client(app_hub, bob).push("bob/copy", make_folder(tmp_path / "b", {"w.safetensors": secret}), "model")
    assert app_hub.hub.resolve("bob/copy").total_size == len(secret)


def test_a_half_sent_file_is_only_its_senders_to_finish(app_hub: AppHub) -> None:
    data = bytes(range(256)) * 8
    sha = hashlib.sha256(data).hexdigest()
    ann, bob = app_hub.user("ann", "write"), app_hub.user("bob", "write")
    http, size = app_hub.client, {"size": len(data)}
    http.put(f"/api/v1/uploads/{sha}", params=size, content=data[:1000], headers=app_hub.headers(ann))
    bobs = http.get(f"/api/v1/uploads/{sha}", params=size, headers=app_hub.headers(bob)).json()
    assert bobs["received"] == 0  # Ann's first half is not Bob's to build on
    rest = http.put(
        f"/api/v1/uploads/{sha}",
        params={**size, "offset": 1000},
        content=data[1000:],
        headers=app_hub.headers(bob),
    )
    assert rest.status_code == 409 and "offset 0" in rest.json()["message"]
