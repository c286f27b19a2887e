"""The server as a whole, over real HTTP: it starts, it knows who a token belongs to, it refuses bad ones."""

from __future__ import annotations

import httpx

from tests.server.conftest import RunningHub


def test_whoami_names_the_admin_of_the_token(hub_server: RunningHub) -> None:
    answer = httpx.get(f"{hub_server.url}/api/v1/whoami", headers=hub_server.headers())
    assert answer.status_code == 200
    body = answer.json()
    assert body["user"] == "admin" and body["is_admin"] is True
    assert body["scopes"] == ["admin", "read", "write"]


def test_anonymous_whoami_is_nobody(hub_server: RunningHub) -> None:
    assert httpx.get(f"{hub_server.url}/api/v1/whoami").json()["user"] is None


def test_a_wrong_token_is_401_and_not_echoed(hub_server: RunningHub) -> None:
    wrong = "fmk_0123456789ab_" + "x" * 43
    answer = httpx.get(f"{hub_server.url}/api/v1/whoami", headers=hub_server.headers(wrong))
    assert answer.status_code == 401
    assert answer.headers["www-authenticate"] == "Bearer"
    assert wrong not in answer.text and "xxxx" not in answer.text
