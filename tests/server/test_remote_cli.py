"""``fmstack login/whoami/logout`` against a real server process, whom it names as a token's owner, and
what its log holds afterwards.

One server for all of it: a start costs seconds, and the log check then also covers the logins' requests."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import httpx
import pytest

from tests.server.conftest import RunningHub, fmstack, hub_env


def _login_whoami_logout_with_a_token_from_stdin(hub_server: RunningHub, tmp_path: Path) -> None:
    home = tmp_path / "client-home"
    env = hub_env(home)
    wrong = fmstack(
        env,
        "login",
        hub_server.url,
        "--token-stdin",
        stdin="fmk_000000000000_" + "a" * 43 + "\n",
        check=False,
    )
    assert wrong.returncode == 1 and "not valid" in wrong.stderr
    assert not (home / "credentials.json").exists()
    done = fmstack(env, "login", hub_server.url, "--token-stdin", "--json", stdin=hub_server.token + "\n")
    assert json.loads(done.stdout)["user"] == "admin"
    assert stat.S_IMODE((home / "credentials.json").stat().st_mode) == 0o600
    who = json.loads(fmstack(env, "whoami", "--json").stdout)
    assert who["user"] == "admin" and who["url"] == hub_server.url
    assert fmstack(env, "logout").returncode == 0
    gone = fmstack(env, "whoami", check=False)
    assert gone.returncode == 1 and "fmstack login" in gone.stderr


@pytest.mark.slow
def test_login_whoami_logout_then_no_token_or_authorization_header_is_in_the_log(
    hub_server: RunningHub, tmp_path: Path
) -> None:
    _login_whoami_logout_with_a_token_from_stdin(hub_server, tmp_path)
    answer = httpx.get(f"{hub_server.url}/api/v1/whoami", headers=hub_server.headers())
    assert answer.status_code == 200  # the real process knows whose token it is
    body = answer.json()
    assert body["user"] == "admin" and body["is_admin"] is True
    assert body["scopes"] == ["admin", "read", "write"]
    bad = "fmk_0123456789ab_" + "b" * 43
    for token in (hub_server.token, bad, "garbage-token-value"):
        httpx.get(f"{hub_server.url}/api/v1/whoami", headers={"Authorization": f"Bearer {token}"})
        httpx.get(f"{hub_server.url}/api/v1/repos/x/y", headers={"Authorization": f"Bearer {token}"})
    hub_server.stop()
    log = hub_server.log.read_text()
    secret = hub_server.token.split("_", 2)[2]  # fmk_<prefix>_<secret>; the secret may hold "_"
    assert secret not in log and "b" * 43 not in log and "garbage-token-value" not in log
    assert "a" * 43 not in log  # the wrong token the login above was given
    assert "Bearer" not in log
