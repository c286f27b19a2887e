"""What a push may contain: nothing outside the pushed folder, never an empty version."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from fmstack.errors import InvalidInput, NotFound
from fmstack.hub import Hub
from fmstack.hub.manifest import ManifestEntry, check_relative_path, collect_files, manifest_digest
from tests.hub.folders import make_folder


def test_symlink_outside_the_folder_is_refused_and_nothing_is_written(hub: Hub, tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("do not upload")
    folder = make_folder(tmp_path / "m", {"config.json": "{}"})
    (folder / "leak.txt").symlink_to(secret)
    with pytest.raises(InvalidInput, match="'leak.txt' is a symlink to .*outside the pushed folder"):
        hub.push("acme/m", folder, "model")
    assert hub.ls() == []
    assert list(hub.blobs.list()) == []


def test_symlink_inside_the_folder_is_stored_as_a_file(tmp_path: Path) -> None:
    folder = make_folder(tmp_path / "m", {"real.txt": "x"})
    (folder / "alias.txt").symlink_to(folder / "real.txt")
    assert [name for name, _ in collect_files(folder)] == ["alias.txt", "real.txt"]


def test_empty_and_missing_folders_are_refused(hub: Hub, tmp_path: Path) -> None:
    (tmp_path / "empty/sub").mkdir(parents=True)
    with pytest.raises(InvalidInput, match="empty folder"):
        hub.push("acme/m", tmp_path / "empty", "model")
    with pytest.raises(NotFound, match="no such file or folder"):
        hub.push("acme/m", tmp_path / "missing", "model")
    assert hub.ls() == []


@pytest.mark.parametrize("name", ["../x", "/etc/passwd", "a/../../b", "", "."])
def test_relative_paths_may_not_escape(name: str) -> None:
    with pytest.raises(InvalidInput, match="escapes the pushed folder"):
        check_relative_path(name)


def test_special_files_are_refused(tmp_path: Path) -> None:
    folder = make_folder(tmp_path / "m", {"a": "x"})
    os.mkfifo(folder / "pipe")
    with pytest.raises(InvalidInput, match=r"'pipe' is a named pipe \(FIFO\), not a regular file"):
        collect_files(folder)


def test_digest_depends_on_content_not_order() -> None:
    a, b = ManifestEntry("a", "1" * 64, 1), ManifestEntry("b", "2" * 64, 2)
    assert manifest_digest([a, b]) == manifest_digest([b, a])
    assert manifest_digest([a]) != manifest_digest([a, b])
    assert manifest_digest([a]) != manifest_digest([ManifestEntry("renamed", a.sha256, a.size)])
