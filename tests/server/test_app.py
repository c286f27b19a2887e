"""The server as a whole: it starts as a real process and knows who a token belongs to; anonymous
callers are nobody; a bad token is refused without being echoed."""

from __future__ import annotations

import httpx
from fastapi.testclient import TestClient

from tests.server.conftest import AppHub, RunningHub


def test_a_real_server_names_the_admin_of_the_token(hub_server: RunningHub) -> None:
    answer = httpx.get(f"{hub_server.url}/api/v1/whoami", headers=hub_server.headers())
    assert answer.status_code == 200
    body = answer.json()
    assert body["user"] == "admin" and body["is_admin"] is True
    assert body["scopes"] == ["admin", "read", "write"]


def test_anonymous_whoami_is_nobody(app_hub: AppHub) -> None:
    assert app_hub.client.get("/api/v1/whoami").json()["user"] is None


def test_a_wrong_token_is_401_and_not_echoed(app_hub: AppHub) -> None:
    wrong = "fmk_0123456789ab_" + "x" * 43
    answer = app_hub.client.get("/api/v1/whoami", headers=app_hub.headers(wrong))
    assert answer.status_code == 401
    assert answer.headers["www-authenticate"] == "Bearer"
    assert wrong not in answer.text and "xxxx" not in answer.text


def test_an_internal_error_is_a_500_that_tells_nothing(app_hub: AppHub) -> None:
    def broken() -> None:
        raise RuntimeError("secret detail")

    app_hub.client.app.add_api_route("/broken", broken)  # type: ignore[attr-defined]
    answer = TestClient(app_hub.client.app, raise_server_exceptions=False).get("/broken")
    assert answer.status_code == 500 and "secret" not in answer.text
