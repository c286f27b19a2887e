"""Who may read and write what (server/access.py), through the HTTP app: private == missing, scopes
and roles, anonymous reads, and the failed-token limit."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from fmstack.server.app import create_app
from fmstack.server.ratelimit import FailureLimiter, TooManyFailures
from fmstack.server.settings import ServerSettings
from fmstack.server.visibility import set_visibility
from fmstack.settings import Settings
from tests.hub.folders import make_folder
from tests.server.conftest import AppHub


def _push(app_hub: AppHub, tmp_path: Path, repo: str, visibility: str) -> None:
    folder = make_folder(tmp_path / repo.replace("/", "-"), {"config.json": "{}"})
    app_hub.hub.push(repo, folder, "model")
    set_visibility(app_hub.hub, repo, visibility)


def test_a_private_repo_answers_exactly_like_a_missing_one(app_hub: AppHub, tmp_path: Path) -> None:
    app_hub.accounts.add("acme", "org")
    _push(app_hub, tmp_path, "acme/secret", "private")
    outsider = app_hub.user("carol", "write")
    for path in (
        "/api/v1/repos/acme/{}",
        "/api/v1/repos/acme/{}/versions/1",
        "/api/v1/repos/acme/{}/versions/latest",
    ):
        for headers in ({}, app_hub.headers(outsider)):
            private = app_hub.client.get(path.format("secret"), headers=headers)
            missing = app_hub.client.get(path.format("nothing-here"), headers=headers)
            assert private.status_code == missing.status_code == 404
            assert private.content.replace(b"secret", b"X") == missing.content.replace(b"nothing-here", b"X")
            assert private.headers.keys() == missing.headers.keys()


def test_members_read_private_repos_and_listings_hide_the_rest(app_hub: AppHub, tmp_path: Path) -> None:
    app_hub.accounts.add("acme", "org")
    _push(app_hub, tmp_path, "acme/secret", "private")
    _push(app_hub, tmp_path, "acme/open", "public")
    member = app_hub.user("bob", "read", org="acme", role="read")
    outsider = app_hub.user("carol", "read")
    assert app_hub.client.get("/api/v1/repos/acme/secret", headers=app_hub.headers(member)).status_code == 200

    def listed(token: str | None) -> set[str]:
        answer = app_hub.client.get("/api/v1/repos", headers=app_hub.headers(token) if token else {})
        return {r["repo"] for r in answer.json()}

    assert listed(member) == {"acme/secret", "acme/open"}
    assert listed(outsider) == listed(None) == {"acme/open"}


def test_a_read_token_cannot_write_and_a_reader_role_cannot_either(app_hub: AppHub, tmp_path: Path) -> None:
    app_hub.accounts.add("acme", "org")
    _push(app_hub, tmp_path, "acme/m", "private")
    read_token = app_hub.user("bob", "read", org="acme", role="write")
    reader = app_hub.user("dan", "write", org="acme", role="read")
    writer = app_hub.user("eve", "write", org="acme", role="admin")  # visibility is the admins' call
    body = {"visibility": "public"}
    url = "/api/v1/repos/acme/m/visibility"
    assert app_hub.client.put(url, json=body, headers=app_hub.headers(read_token)).status_code == 403
    assert app_hub.client.put(url, json=body, headers=app_hub.headers(reader)).status_code == 403
    assert app_hub.client.put(url, json=body).status_code == 401
    assert app_hub.client.put(url, json=body, headers=app_hub.headers(writer)).status_code == 200
    assert app_hub.client.get("/api/v1/repos/acme/m").status_code == 200  # public now
    entry = app_hub.accounts.audit_log()[0]
    assert (entry.actor, entry.action, entry.target) == ("eve", "visibility", "acme/m")


def test_without_anonymous_reads_a_request_without_a_token_is_401(tmp_path: Path) -> None:
    app = create_app(ServerSettings(hub=Settings.at(tmp_path / "home"), anonymous_read=False))
    with TestClient(app) as client:
        answer = client.get("/api/v1/repos")
    assert answer.status_code == 401 and answer.headers["www-authenticate"] == "Bearer"


def test_repeated_bad_tokens_from_one_address_get_429(app_hub: AppHub) -> None:
    bad = {"Authorization": "Bearer fmk_000000000000_" + "a" * 43}
    statuses = [app_hub.client.get("/api/v1/whoami", headers=bad).status_code for _ in range(12)]
    assert statuses[:10] == [401] * 10 and statuses[10:] == [429, 429]
    # a valid token from that address waits too: the limit is on the address, not on the token
    assert app_hub.client.get("/api/v1/whoami", headers=app_hub.headers()).status_code == 429


def test_the_limiter_forgets_failures_after_its_window() -> None:
    now = [0.0]
    limiter = FailureLimiter(2, clock=lambda: now[0])
    limiter.failed("a")
    limiter.failed("a")
    with pytest.raises(TooManyFailures) as caught:
        limiter.check("a")
    assert caught.value.retry_after_s == 61
    limiter.check("b")  # other addresses are not affected
    now[0] = 60.5
    limiter.check("a")
