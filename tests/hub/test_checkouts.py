"""The checkout cache: copies are read-only, a changed copy is re-verified (and made again when its
bytes no longer match), and gc removes copies that went unused or whose version was removed."""

from __future__ import annotations

import os
import stat
import time
from pathlib import Path

from fmstack.hub import Hub, checkouts
from fmstack.hub.maintenance import fsck, gc
from tests.hub.folders import make_folder
from tests.hub.mounts import tiny_disk


def _writable(path: Path) -> bool:
    return bool(path.stat().st_mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))


def test_a_checkout_is_read_only_and_stamped(hub: Hub, tmp_path: Path) -> None:
    hub.push("acme/m", make_folder(tmp_path / "a", {"w.bin": "123", "sub/c.json": "{}"}), "model")
    folder = hub.checkout("acme/m")
    assert not any(_writable(p) for p in (folder, folder / "sub", folder / "w.bin", folder / "sub/c.json"))
    assert checkouts.intact(folder)
    assert list((hub.settings.home / "tmp").iterdir()) == []  # the staging folder is gone


def test_a_changed_copy_is_verified_again_and_made_again_when_wrong(hub: Hub, tmp_path: Path) -> None:
    hub.push("acme/m", make_folder(tmp_path / "a", {"w.bin": "123", "c.json": "{}"}), "model")
    folder = hub.checkout("acme/m")
    weights = folder / "w.bin"
    weights.chmod(0o644)  # someone made it writable but did not change it: verified, sealed again
    assert hub.checkout("acme/m") == folder and not _writable(weights) and checkouts.intact(folder)
    weights.chmod(0o644)
    weights.write_text("999")  # same size, new bytes
    assert hub.checkout("acme/m") == folder
    assert weights.read_text() == "123" and not _writable(weights)
    folder.chmod(0o755)
    (folder / "extra.txt").write_text("not part of the version")
    assert sorted(p.name for p in hub.checkout("acme/m").iterdir()) == ["c.json", "w.bin"]
    (folder / "c.json").chmod(0o644)
    folder.chmod(0o755)
    (folder / "c.json").unlink()
    assert (hub.checkout("acme/m") / "c.json").read_text() == "{}"


def test_gc_removes_unused_checkouts_and_those_of_removed_versions(hub: Hub, tmp_path: Path) -> None:
    hub.push("acme/keep", make_folder(tmp_path / "k", {"w.bin": "keep"}), "model")
    hub.push("acme/drop", make_folder(tmp_path / "d", {"w.bin": "drop"}), "model")
    keep, drop = hub.checkout("acme/keep"), hub.checkout("acme/drop")
    hub.rm("acme/drop")
    assert fsck(hub).leftovers == [] and gc(hub).leftovers == []  # just used: kept for the grace time
    hour_ago = time.time() - checkouts.REMOVED_GRACE_S - 60
    os.utime(checkouts.stamp_of(drop), (hour_ago, hour_ago))
    assert [(left.path, left.what) for left in fsck(hub).leftovers] == [
        (str(drop), "checkout of a removed version")
    ]
    assert [left.path for left in gc(hub).leftovers] == [str(drop)]
    assert not drop.exists() and not checkouts.stamp_of(drop).exists() and keep.is_dir()
    assert hub.checkout("acme/keep") == keep  # a use is recorded on the stamp
    assert checkouts.stale(hub.settings.home, {keep.name}) == []
    later = time.time() + checkouts.UNUSED_DAYS * 86400 + 60
    (unused,) = checkouts.stale(hub.settings.home, {keep.name}, now=later)
    assert unused.path == str(keep) and unused.what == "unused checkout"


def test_a_cache_on_another_disk_than_tmp_still_gets_its_copy(hub: Hub, tmp_path: Path) -> None:
    hub.push("acme/m", make_folder(tmp_path / "a", {"w.bin": "123"}), "model")
    with tiny_disk(hub.settings.home / "cache", size="4m"):  # renaming from tmp/ into it fails (EXDEV)
        folder = hub.checkout("acme/m")
        assert (folder / "w.bin").read_text() == "123" and checkouts.intact(folder)
        assert sorted(p.name for p in folder.parent.iterdir()) == [folder.name, folder.name + ".json"]
