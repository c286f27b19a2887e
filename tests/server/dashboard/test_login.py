"""Login, sessions and their end, in-process (TestClient): no anonymous reads, revoked tokens,
forged cookies, and the login form's redirect staying on the site."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient

from fmstack.server.accounts import Accounts
from fmstack.server.app import create_app
from fmstack.server.dashboard.sessions import SESSION_COOKIE
from fmstack.server.settings import ServerSettings
from fmstack.settings import Settings


@pytest.fixture
def closed_server(tmp_path: Path) -> Iterator[tuple[TestClient, Accounts]]:
    app = create_app(ServerSettings(hub=Settings.at(tmp_path / "home"), anonymous_read=False))
    accounts: Accounts = app.state.accounts
    accounts.add("alice", "user")
    with TestClient(app, follow_redirects=False) as client:
        yield client, accounts


def _login(client: TestClient, token: str, next_: str = "/") -> tuple[int, str]:
    csrf = re.search(r'name="csrf" value="([^"]+)"', client.get("/login").text)
    assert csrf is not None
    answer = client.post("/login", data={"token": token, "csrf": csrf[1], "next": next_})
    return answer.status_code, answer.headers.get("location", "")


def test_without_anonymous_reads_every_page_asks_to_log_in(
    closed_server: tuple[TestClient, Accounts],
) -> None:
    client, accounts = closed_server
    for path in ("/", "/runs", "/repos/acme/x", "/admin"):
        answer = client.get(path)
        assert answer.status_code == 303, path
        assert answer.headers["location"] == f"/login?next={quote(path)}&why=closed"
    token = accounts.create_token("alice", ["read"]).token
    assert _login(client, token) == (303, "/")
    cookie = client.cookies[SESSION_COOKIE]
    assert token not in cookie and token.split("_")[2] not in cookie  # the secret never leaves the server
    assert "alice" in client.get("/").text


def test_a_revoked_token_or_a_forged_cookie_ends_the_session(
    closed_server: tuple[TestClient, Accounts],
) -> None:
    client, accounts = closed_server
    token = accounts.create_token("alice", ["read"]).token
    _login(client, token)
    assert client.get("/").status_code == 200
    cookie = client.cookies[SESSION_COOKIE]
    client.cookies.clear()
    client.cookies.set(SESSION_COOKIE, cookie[:-1] + ("0" if cookie[-1] != "0" else "1"))
    assert client.get("/").status_code == 303
    client.cookies.clear()
    client.cookies.set(SESSION_COOKIE, cookie)
    assert client.get("/").status_code == 200
    accounts.revoke(token.split("_")[1])
    ended = client.get("/")
    assert ended.status_code == 303
    assert ended.headers["location"] == "/login?next=/&why=revoked"
    assert "no longer valid (revoked or expired)" in client.get(ended.headers["location"]).text
    assert "evil" not in client.get("/login?why=evil.example+says+hi").text  # only known reasons show


def test_wrong_tokens_are_refused_and_the_redirect_stays_on_site(
    closed_server: tuple[TestClient, Accounts],
) -> None:
    client, accounts = closed_server
    status, _ = _login(client, "fmk_000000000000_" + "a" * 43)
    assert status == 401
    status, _ = _login(client, "not a token")
    assert status == 401
    token = accounts.create_token("alice", ["read"]).token
    assert _login(client, token, "//evil.example/x") == (303, "/")
    assert _login(client, token, "https://evil.example/") == (303, "/")
    assert _login(client, token, "/runs?kind=train") == (303, "/runs?kind=train")
