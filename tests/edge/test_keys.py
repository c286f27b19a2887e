"""Keys: private keys with mode 0600, never overwritten; a rotated online key reaches devices through
the signed root chain, and the old key is refused afterwards."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from fmstack.edge.keys import KeyFolder, init_keys, rotate_online_key
from fmstack.errors import Conflict, NotFound
from tests.edge.conftest import Mirror, agent_config


def test_init_writes_private_keys_0600_and_refuses_to_overwrite(tmp_path: Path) -> None:
    keys = KeyFolder.at(tmp_path / "keys", root_key=tmp_path / "usb" / "root.pem")
    anchor = init_keys(keys)
    assert anchor == keys.roots / "1.root.json"
    for private in (keys.online_key, keys.root_key):
        assert stat.S_IMODE(private.stat().st_mode) == 0o600
    assert b"PRIVATE" not in anchor.read_bytes()
    with pytest.raises(Conflict, match="already exist"):
        init_keys(keys)
    with pytest.raises(NotFound, match="--root-key"):
        rotate_online_key(KeyFolder.at(keys.folder))  # the root key is offline, elsewhere


def test_a_rotated_key_reaches_devices_and_the_old_one_is_refused(
    mirror: Mirror, versions: dict[str, Path], tmp_path: Path
) -> None:
    from fmstack_edge.agent import Agent

    keys = KeyFolder.at(tmp_path / "keys")
    init_keys(keys)
    old = KeyFolder.at(tmp_path / "old-keys")
    old.folder.mkdir()
    (old.folder / "online.pem").write_bytes(keys.online_key.read_bytes())
    mirror.keys = keys
    mirror.publish(versions["cls"], "acme/cls:1")
    agent = Agent(agent_config(mirror.url, tmp_path / "device", keys))  # type: ignore[arg-type]
    agent.boot()
    assert agent.poll().startswith("installed bundle 1")

    rotate_online_key(keys)
    assert stat.S_IMODE(keys.online_key.stat().st_mode) == 0o600
    mirror.publish(versions["cls2"], "acme/cls:2")  # carries 2.root.json, signed by the root key
    assert agent.poll().startswith("installed bundle 2")

    # The retired online key, signing against root 2's history, is no longer trusted.
    (old.folder / "roots").symlink_to(keys.roots)
    with pytest.raises(Exception, match="not the one the latest root"):
        mirror.publish(versions["cls"], "acme/cls:1", keys=old)
