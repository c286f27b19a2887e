"""Where the client finds its hub server and token (server/credentials.py)."""

from __future__ import annotations

import stat
from dataclasses import replace
from pathlib import Path

import pytest

from fmstack.errors import InvalidInput
from fmstack.server.credentials import Credentials, load, logged_in, remote, save
from fmstack.settings import Settings


def test_saved_credentials_are_readable_by_this_user_only(tmp_path: Path) -> None:
    path = save(tmp_path, Credentials("http://hub:8765", "fmk_x"))
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load(tmp_path) == Credentials("http://hub:8765", "fmk_x")


def test_which_server_and_token_a_command_uses(tmp_path: Path) -> None:
    settings = Settings.at(tmp_path)
    assert remote(settings) is None  # the local hub
    save(tmp_path, Credentials("http://hub:8765", "stored"))
    assert remote(settings) is None  # logging in selects nothing; FMSTACK_HUB_URL / --hub does
    assert logged_in(settings) == Credentials("http://hub:8765", "stored")
    # --hub / FMSTACK_HUB_URL for another server: the stored token is not sent there
    assert remote(replace(settings, hub_url="http://other/")) == Credentials("http://other", "")
    assert remote(replace(settings, hub_url="http://hub:8765/")) == Credentials("http://hub:8765", "stored")
    with_env = replace(settings, hub_url="http://hub:8765", hub_token="env")
    assert remote(with_env) == Credentials("http://hub:8765", "env")
    with pytest.raises(InvalidInput):
        remote(replace(settings, hub_url="ftp://hub"))
