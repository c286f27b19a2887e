"""The hub server under attack (issue 13's "Bad input and attacks"): every write route and the scope
it needs, writes to a private repo that answer like writes to a missing one, and request bodies that
are capped before they are read."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from fmstack.server.app import create_app
from fmstack.server.ratelimit import FailureLimiter
from fmstack.server.settings import ServerSettings
from fmstack.server.visibility import set_visibility
from fmstack.settings import Settings
from tests.hub.folders import make_folder
from tests.server.conftest import AppHub

SHA = "a" * 64
MANIFEST = {"kind": "model", "files": [{"path": "config.json", "sha256": SHA, "size": 2}]}

# Every route that changes something, with a body that passes validation. A route missing here fails
# test_the_table_lists_every_write_route, so a new write route cannot skip these checks.
WRITES: dict[tuple[str, str], dict[str, Any] | None] = {
    ("PUT", "/api/v1/repos/{namespace}/{name}/visibility"): {"visibility": "public"},
    ("PUT", "/api/v1/repos/{namespace}/{name}/versions/{rev}/card"): {"text": "hello"},
    ("POST", "/api/v1/repos/{namespace}/{name}/push/plan"): MANIFEST,
    ("POST", "/api/v1/repos/{namespace}/{name}/versions"): MANIFEST,
    ("PUT", "/api/v1/repos/{namespace}/{name}/aliases/{alias}"): {"version": 1},
    ("DELETE", "/api/v1/repos/{namespace}/{name}/aliases/{alias}"): None,
    ("DELETE", "/api/v1/repos/{namespace}/{name}/versions/{rev}"): None,
    ("PUT", "/api/v1/uploads/{sha256}"): None,
    ("GET", "/api/v1/uploads/{sha256}"): None,  # a read, but only uploaders may ask
    ("POST", "/api/v1/runs"): {"kind": "train", "spec": {}},
    ("DELETE", "/api/v1/runs/{run_id}"): None,
    ("POST", "/api/v1/runs/{run_id}/metrics"): {"step": 1, "metrics": {"loss": 1.0}},
    ("POST", "/api/v1/runs/{run_id}/logs"): {"text": "line"},
    ("POST", "/api/v1/runs/{run_id}/finish"): {"status": "succeeded"},
}
REPO_WRITES = {key: body for key, body in WRITES.items() if "{namespace}" in key[1]}
# Write routes with access rules of their own; their areas' tests check those rules (tests/federated,
# tests/edge). Here: each is listed, and an anonymous call is refused before anything is looked at.
# Devices may report anonymously on a public channel, so there a missing channel answers 404, as a
# private one does.
OTHER_WRITES: dict[tuple[str, str], tuple[int, dict[str, Any] | None]] = {
    ("POST", "/api/v1/federations"): (401, {"name": "acme/fed"}),
    ("POST", "/api/v1/federations/{namespace}/{name}/clients"): (401, {"client": "c1"}),
    ("POST", "/api/v1/federations/{namespace}/{name}/stop"): (401, None),
    # a client token of that federation (fmf_...)
    ("POST", "/api/v1/federations/{namespace}/{name}/rounds/{number}/updates?examples=1"): (401, None),
    ("POST", "/api/v1/edge/channels/{channel}/publish"): (
        401,
        {"targets": "", "snapshot": "", "timestamp": ""},
    ),
    ("POST", "/api/v1/edge/channels/{channel}/devices/{device_id}"): (404, {}),
}


def _url(template: str, repo: str, run_id: int = 1) -> str:
    namespace, name = repo.split("/")
    url = template.format(namespace=namespace, name=name, rev="1", alias="prod", sha256=SHA, run_id=run_id)
    return url + ("?size=2" if "/uploads/" in url else "")


def _call(client: TestClient, method: str, url: str, body: dict[str, Any] | None, token: str | None) -> Any:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    if method == "PUT" and "/uploads/" in url:
        return client.put(url, content=b"{}", headers=headers)
    return client.request(method, url, json=body, headers=headers)


def _push(app_hub: AppHub, tmp_path: Path, repo: str, visibility: str) -> None:
    folder = make_folder(tmp_path / repo.replace("/", "-"), {"config.json": "{}"})
    app_hub.hub.push(repo, folder, "model")
    set_visibility(app_hub.hub, repo, visibility)


def test_the_table_lists_every_write_route(app_hub: AppHub) -> None:
    schema = app_hub.client.get("/openapi.json").json()
    writes = {
        (method.upper(), path)
        for path, operations in schema["paths"].items()
        for method in operations
        if method in {"post", "put", "patch", "delete"}
    }
    listed = {key for key in WRITES if key[0] != "GET"} | {(m, p.split("?")[0]) for m, p in OTHER_WRITES}
    assert writes == listed


def test_routes_with_rules_of_their_own_refuse_anonymous_calls(app_hub: AppHub) -> None:
    values = {"namespace": "acme", "name": "fed", "number": 1, "channel": "stable", "device_id": "d1"}
    for (method, template), (status, body) in OTHER_WRITES.items():
        answer = _call(app_hub.client, method, template.format(**values), body, None)
        assert answer.status_code == status, (method, template, answer.text)


def test_a_read_token_gets_403_on_every_write_route(app_hub: AppHub, tmp_path: Path) -> None:
    app_hub.accounts.add("acme", "org")
    _push(app_hub, tmp_path, "acme/m", "private")
    app_hub.hub.tag("acme/m:1", "prod")
    reader = app_hub.user("bob", "read", org="acme", role="write")  # the role allows it; the token not
    writer = app_hub.accounts.create_token("bob", ["write"]).token
    started = app_hub.client.post(
        "/api/v1/runs", json={"kind": "train", "spec": {}}, headers=app_hub.headers(writer)
    )
    run_id = started.json()["id"]
    for (method, template), body in WRITES.items():
        url = _url(template, "acme/m", run_id)
        answer = _call(app_hub.client, method, url, body, reader)
        assert answer.status_code == 403, (method, template, answer.text)
        assert _call(app_hub.client, method, url, body, None).status_code == 401, (method, template)
    assert app_hub.hub.info("acme/m@prod").version.number == 1  # nothing changed
    assert [e.action for e in app_hub.accounts.audit_log()] == ["run-start"]  # the write token's own run


def test_writes_to_a_private_repo_answer_exactly_like_writes_to_a_missing_one(
    app_hub: AppHub, tmp_path: Path
) -> None:
    app_hub.accounts.add("acme", "org")
    _push(app_hub, tmp_path, "acme/secret", "private")
    app_hub.hub.tag("acme/secret:1", "prod")
    outsider = app_hub.user("carol", "write")  # a write token, but no role in acme
    for (method, template), body in REPO_WRITES.items():
        for token in (outsider, None):
            private = _call(app_hub.client, method, _url(template, "acme/secret"), body, token)
            missing = _call(app_hub.client, method, _url(template, "acme/nothing-here"), body, token)
            where = (method, template, token is not None)
            assert private.status_code == missing.status_code, (*where, private.text, missing.text)
            assert private.status_code in (401, 403), where
            assert private.content.replace(b"secret", b"X") == missing.content.replace(b"nothing-here", b"X")
            assert private.headers.keys() == missing.headers.keys(), where
    assert app_hub.hub.info("acme/secret@prod").version.number == 1
    assert app_hub.accounts.audit_log() == []


@pytest.fixture
def small_body_app(tmp_path: Path) -> Iterator[AppHub]:
    settings = ServerSettings(hub=Settings.at(tmp_path / "home"), max_body_bytes=4096, max_upload_bytes=10**6)
    app = create_app(settings)
    app.state.accounts.add("admin", "user", admin=True)
    token = app.state.accounts.create_token("admin", ["admin"]).token
    with TestClient(app) as client:
        yield AppHub(client, app.state.accounts, app.state.hub, token)


def test_a_json_body_over_the_limit_is_413_before_the_token_is_even_checked(small_body_app: AppHub) -> None:
    big = {"kind": "train", "spec": {"x": "y" * 10_000}}
    anonymous = small_body_app.client.post("/api/v1/runs", json=big)
    assert anonymous.status_code == 413, anonymous.text
    assert "4,096 bytes" in anonymous.json()["message"]
    # within the limit, the same route answers as usual
    assert small_body_app.client.post("/api/v1/runs", json={"kind": "train", "spec": {}}).status_code == 401


def test_a_chunked_body_without_a_length_is_cut_off_at_the_limit(small_body_app: AppHub) -> None:
    sent: list[int] = []

    def chunks() -> Iterator[bytes]:
        yield b'{"kind": "train", "spec": {"x": "'
        for _ in range(1000):  # 1 MB in all, if it were all read
            sent.append(1)
            yield b"y" * 1000
        yield b'"}}'

    answer = small_body_app.client.post(
        "/api/v1/runs",
        content=chunks(),
        headers={**small_body_app.headers(), "Content-Type": "application/json"},
    )
    assert answer.status_code == 413, answer.text
    assert small_body_app.hub.runs.recent(limit=5) == []


def test_uploads_stream_past_the_json_limit_under_their_own(small_body_app: AppHub) -> None:
    import hashlib

    data = b"z" * 20_000  # over max_body_bytes, under max_upload_bytes
    sha = hashlib.sha256(data).hexdigest()
    url = f"/api/v1/uploads/{sha}?size={len(data)}"
    answer = small_body_app.client.put(url, content=data, headers=small_body_app.headers())
    assert answer.status_code == 200 and answer.json()["complete"], answer.text
    assert small_body_app.hub.blobs.has(sha)


# Every read route that takes a repo, filled in for version 1 of a model repo.
# Federation reads take an account's or a federation client's token (tests/federated checks both).
FEDERATION_READS = (
    "/api/v1/federations/{namespace}/{name}",
    "/api/v1/federations/{namespace}/{name}/task",
    "/api/v1/federations/{namespace}/{name}/rounds/{number}/global",
)
REPO_READS = (
    "/api/v1/repos/{namespace}/{name}",
    "/api/v1/repos/{namespace}/{name}/versions/{rev}",
    "/api/v1/repos/{namespace}/{name}/versions/{rev}/card",
    "/api/v1/repos/{namespace}/{name}/versions/{rev}/lineage",
    "/api/v1/repos/{namespace}/{name}/aliases",
    "/api/v1/repos/{namespace}/{name}/blobs/{sha256}",
    "/api/models/{namespace}/{name}",
    "/api/models/{namespace}/{name}/revision/{revision}",
    "/api/models/{namespace}/{name}/tree/{revision}",
    "/api/models/{namespace}/{name}/tree/{revision}/{path}",
    "/api/datasets/{namespace}/{name}",
    "/api/datasets/{namespace}/{name}/revision/{revision}",
    "/api/datasets/{namespace}/{name}/tree/{revision}",
    "/api/datasets/{namespace}/{name}/tree/{revision}/{path}",
    "/{namespace}/{name}/resolve/{revision}/{path}",
    "/datasets/{namespace}/{name}/resolve/{revision}/{path}",
)


def test_the_read_table_lists_every_route_that_takes_a_repo(app_hub: AppHub) -> None:
    schema = app_hub.client.get("/openapi.json").json()
    reads = {path for path, operations in schema["paths"].items() if "get" in operations and "{name}" in path}
    assert reads == set(REPO_READS) | set(FEDERATION_READS)


def _read(client: TestClient, method: str, url: str, token: str | None) -> Any:
    return client.request(method, url, headers={"Authorization": f"Bearer {token}"} if token else {})


def test_reads_of_a_private_repo_answer_exactly_like_reads_of_a_missing_one(
    app_hub: AppHub, tmp_path: Path
) -> None:
    app_hub.client.app.state.failures = FailureLimiter(10**6)  # type: ignore[attr-defined]  # many bad tokens here
    app_hub.accounts.add("acme", "org")
    _push(app_hub, tmp_path, "acme/secret", "private")
    sha = app_hub.hub.info("acme/secret").files[0].sha256
    outsider = app_hub.user("carol", "write")
    bad = "fmk_000000000000_" + "a" * 43
    fill = {"rev": "1", "revision": "main", "path": "config.json", "sha256": sha}
    for template in REPO_READS:
        private_url = template.format(namespace="acme", name="secret", **fill)
        missing_url = template.format(namespace="acme", name="absent", **fill)  # same length as "secret"
        for method in ("GET", "HEAD") if "resolve" in template else ("GET",):
            for token in (outsider, None, bad):
                private = _read(app_hub.client, method, private_url, token)
                missing = _read(app_hub.client, method, missing_url, token)
                where = (method, template, token)
                assert private.status_code == missing.status_code, where
                assert private.status_code in (401, 404), where
                assert private.content.replace(b"secret", b"absent") == missing.content, where
                same = {k: v.replace("secret", "absent") for k, v in private.headers.items() if k != "date"}
                assert same == {k: v for k, v in missing.headers.items() if k != "date"}, where


HUGE = "9" * 30  # past a signed 64-bit integer: the database cannot even be asked
VERY_HUGE = "9" * 5000  # past what Python turns into an int without being told to


def test_numbers_past_the_database_and_padded_names_are_bad_input_not_500(
    app_hub: AppHub, tmp_path: Path
) -> None:
    app_hub.accounts.add("acme", "org")
    _push(app_hub, tmp_path, "acme/m", "public")
    client = TestClient(app_hub.client.app, raise_server_exceptions=False)  # type: ignore[arg-type]
    headers = app_hub.headers()
    asks: list[tuple[str, str, dict[str, Any] | None]] = [
        ("GET", "/api/v1/repos/%20acme/m", None),  # was read as acme/m, then not found in its listing
        ("GET", "/api/v1/repos/acme/m%20", None),
        ("GET", f"/api/v1/repos/acme/m/versions/{HUGE}", None),
        ("GET", f"/api/v1/repos/acme/m/versions/{VERY_HUGE}", None),
        ("GET", f"/api/models/acme/m/revision/{HUGE}", None),
        ("GET", f"/api/models/acme/m/revision/{VERY_HUGE}", None),
        ("GET", f"/acme/m/resolve/{HUGE}/config.json", None),
        ("GET", f"/api/v1/runs/{HUGE}", None),
        ("POST", f"/api/v1/runs/{HUGE}/metrics", {"step": 1, "metrics": {}}),
        ("PUT", "/api/v1/repos/acme/m/aliases/prod", {"version": int(HUGE)}),
        ("POST", "/api/v1/runs", {"kind": "train", "spec": {}, "inputs": [f"acme/m:{HUGE}"]}),
        ("POST", "/api/v1/runs", {"kind": "train", "spec": {}, "inputs": [f"acme/m:{VERY_HUGE}"]}),
    ]
    for method, url, body in asks:
        answer = client.request(method, url, json=body, headers=headers)
        assert answer.status_code in (404, 422), (method, url[:80], answer.status_code, answer.text[:200])
    started = client.post("/api/v1/runs", json={"kind": "train", "spec": {}}, headers=headers).json()["id"]
    answer = client.post(
        f"/api/v1/runs/{started}/metrics", json={"step": int(HUGE), "metrics": {}}, headers=headers
    )
    assert answer.status_code == 422, answer.text
    manifest = {"kind": "model", "files": [{"path": "w.safetensors", "sha256": SHA, "size": int(HUGE)}]}
    assert client.post("/api/v1/repos/acme/m/versions", json=manifest, headers=headers).status_code == 422
    assert client.get("/api/v1/repos/acme/m", headers=headers).status_code == 200


def test_only_a_namespace_admin_may_make_a_private_repo_public(app_hub: AppHub, tmp_path: Path) -> None:
    app_hub.accounts.add("acme", "org")
    _push(app_hub, tmp_path, "acme/m", "private")
    writer = app_hub.user("bob", "write", org="acme", role="write")
    admin = app_hub.user("ann", "write", org="acme", role="admin")
    url, body = "/api/v1/repos/acme/m/visibility", {"visibility": "public"}
    refused = app_hub.client.put(url, json=body, headers=app_hub.headers(writer))
    assert refused.status_code == 403 and "admin role" in refused.json()["message"]
    assert app_hub.client.get("/api/v1/repos/acme/m").status_code == 404  # still private
    # the writer still writes: a tag is theirs to move
    assert (
        app_hub.client.put(
            "/api/v1/repos/acme/m/aliases/prod", json={"version": 1}, headers=app_hub.headers(writer)
        ).status_code
        == 200
    )
    assert app_hub.client.put(url, json=body, headers=app_hub.headers(admin)).status_code == 200
    assert app_hub.client.get("/api/v1/repos/acme/m").status_code == 200
    own = app_hub.user("carl", "write")  # a user administers their own namespace
    _push(app_hub, tmp_path, "carl/m", "private")
    assert (
        app_hub.client.put(
            "/api/v1/repos/carl/m/visibility", json=body, headers=app_hub.headers(own)
        ).status_code
        == 200
    )


def test_tokens_never_reach_logs_or_answers(
    app_hub: AppHub, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)  # every logger, every level
    app_hub.accounts.add("acme", "org")
    _push(app_hub, tmp_path, "acme/secret", "private")
    reader = app_hub.user("bob", "read")
    revoked = app_hub.accounts.create_token("bob", ["write"])
    app_hub.accounts.revoke(revoked.info.prefix)
    wrong = reader[:-4] + "AAAA"  # the right prefix, a wrong secret
    client = app_hub.client
    answers = [
        client.get("/api/v1/whoami", headers=app_hub.headers(wrong)),
        client.get("/api/v1/whoami", headers=app_hub.headers(revoked.token)),
        client.get("/api/v1/whoami", headers={"Authorization": f"Basic {reader}"}),
        client.put(
            "/api/v1/repos/acme/secret/visibility",
            json={"visibility": "public"},
            headers=app_hub.headers(reader),
        ),
        client.get("/acme/secret/resolve/main/config.json", headers=app_hub.headers(reader)),
        client.get("/api/v1/repos/acme/secret/versions/%00", headers=app_hub.headers(reader)),
        client.post("/api/v1/runs", content=b"{not json", headers=app_hub.headers(reader)),
    ]
    secrets = [reader, wrong, revoked.token, reader[len("fmk_") + 13 :]]  # the last: the secret alone
    for answer in answers:
        assert answer.status_code in (401, 403, 404, 422), answer.text
        shown = answer.text + " ".join(f"{k}: {v}" for k, v in answer.headers.items())
        assert not any(s in shown for s in secrets), shown
    assert not any(s in caplog.text for s in secrets)
    audit = " ".join(repr(e) for e in app_hub.accounts.audit_log(limit=1000))
    assert not any(s in audit for s in secrets)


def test_nobody_pushes_into_another_users_namespace_or_an_org_they_only_read(app_hub: AppHub) -> None:
    app_hub.accounts.add("acme", "org")
    bob = app_hub.user("bob", "write")
    carol = app_hub.user("carol", "write", org="acme", role="read")
    for token, repo, status in (
        (carol, "bob/m", 403),
        (carol, "acme/m", 403),
        (carol, "admin/m", 403),
        (bob, "carol/m", 403),
        (bob, "bob/m", 200),
        (carol, "carol/m", 200),
    ):
        answer = app_hub.client.post(
            f"/api/v1/repos/{repo}/push/plan", json=MANIFEST, headers=app_hub.headers(token)
        )
        assert answer.status_code == status, (repo, answer.text)


def test_a_slow_upload_of_a_blob_never_stalls_another_users_upload_of_it(
    app_hub: AppHub, monkeypatch: pytest.MonkeyPatch
) -> None:
    import anyio

    from fmstack.errors import Conflict
    from fmstack.server import uploads as uploads_module

    monkeypatch.setattr(uploads_module, "LOCK_WAIT_S", 1.0)
    uploads: uploads_module.Uploads = app_hub.client.app.state.uploads  # type: ignore[attr-defined]
    data = b"shared base weights"
    sha = hashlib.sha256(data).hexdigest()

    async def scenario() -> None:
        go_on = anyio.Event()

        async def slow() -> AsyncIterator[bytes]:
            yield data[:5]
            await go_on.wait()  # a client that keeps its connection open and sends nothing
            yield data[5:]

        async def whole() -> AsyncIterator[bytes]:
            yield data

        async with anyio.create_task_group() as tasks:
            tasks.start_soon(uploads.write, sha, len(data), 0, slow(), False, "mallory")
            await anyio.sleep(0.2)
            with anyio.fail_after(10):
                done = await uploads.write(sha, len(data), 0, whole(), False, "bob")
            assert done.complete
            with pytest.raises(Conflict):  # mallory's second writer waits for her first, then is told so
                await uploads.write(sha, len(data), 5, whole(), False, "mallory")
            go_on.set()

    anyio.run(scenario)
    assert app_hub.hub.blobs.has(sha)


def test_run_records_started_finished_and_discarded_are_in_the_audit_log(app_hub: AppHub) -> None:
    bob = app_hub.user("bob", "write")
    headers = app_hub.headers(bob)
    run_id = app_hub.client.post("/api/v1/runs", json={"kind": "train", "spec": {}}, headers=headers).json()[
        "id"
    ]
    assert app_hub.client.post(f"/api/v1/runs/{run_id}/finish", json={}, headers=headers).status_code == 200
    assert app_hub.client.delete(f"/api/v1/runs/{run_id}", headers=headers).status_code == 200
    entries = app_hub.accounts.audit_log(actor="bob")
    assert [(e.action, e.target) for e in reversed(entries)] == [
        ("run-start", f"run {run_id}"),
        ("run-finish", f"run {run_id}"),
        ("run-discard", f"run {run_id}"),
    ]
