"""The version catalogue's own queries (``hub.catalog``), on SQLite and PostgreSQL: what maintenance and
the hub server use instead of reaching into the tables."""

from __future__ import annotations

from pathlib import Path

import pytest

from fmstack.errors import InvalidInput, NotFound
from fmstack.hub import Hub
from tests.hub.folders import make_folder


def test_manifests_and_referenced_blobs(any_hub: Hub, tmp_path: Path) -> None:
    v1 = any_hub.push("acme/m", make_folder(tmp_path / "a", {"w": "1", "c": "x"}), "model")
    v2 = any_hub.push("acme/d", make_folder(tmp_path / "b", {"w": "1"}), "dataset")
    listed = any_hub.catalog.manifests()
    assert [(v.ref, sorted(f.path for f in files)) for v, files in listed] == [
        (v1.ref, ["c", "w"]),
        (v2.ref, ["w"]),
    ]
    assert any_hub.catalog.referenced_blobs() == {f.sha256 for _, files in listed for f in files}
    assert len(any_hub.catalog.referenced_blobs()) == 2  # "1" is stored once for both repos
    assert any_hub.catalog.digests() == {v1.digest, v2.digest}
    any_hub.rm("acme/d")
    assert [v.ref for v, _ in any_hub.catalog.manifests()] == [v1.ref]


def test_visibility_and_holds_blob(any_hub: Hub, tmp_path: Path) -> None:
    version = any_hub.push("acme/m", make_folder(tmp_path / "a", {"w": "1"}), "model")
    sha = any_hub.info(version.ref).files[0].sha256
    assert any_hub.catalog.visibility("acme/m") == "private"  # private until its owner says otherwise
    any_hub.catalog.set_visibility("acme/m", "public")
    assert any_hub.catalog.visibility("acme/m") == "public"
    assert any_hub.ls()[0].visibility == "public"
    assert any_hub.catalog.visibility("acme/other") is None
    with pytest.raises(NotFound, match="no repo named 'acme/other'"):
        any_hub.catalog.set_visibility("acme/other", "public")
    with pytest.raises(InvalidInput, match="bad visibility 'secret'"):
        any_hub.catalog.set_visibility("acme/m", "secret")
    assert any_hub.catalog.holds_blob("acme/m", sha)
    assert not any_hub.catalog.holds_blob("acme/m", "0" * 64)
    assert not any_hub.catalog.holds_blob("acme/other", sha)
