"""The server as a whole: anonymous callers are nobody; a bad token is refused without being echoed. (That a
real server process names a token's owner is checked on the process of tests/server/test_remote_cli.py.)"""

from __future__ import annotations

import subprocess
import sys

from fastapi.testclient import TestClient

from tests.server.conftest import AppHub


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


def test_the_server_starts_without_importing_torch() -> None:
    # Each server process (and worker) would pay ~3 s and ~220 MB for torch; only the federation
    # coordinator needs it, and it is imported by the first federation request.
    code = "import sys, fmstack.server.app; print(sorted({'torch', 'transformers'} & set(sys.modules)))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"
