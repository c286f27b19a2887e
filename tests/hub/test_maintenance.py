"""fsck finds missing, corrupt and orphan blobs and incomplete versions; gc removes only orphans."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import update

from fmstack.hub import Hub
from fmstack.hub.maintenance import fsck, gc
from fmstack.hub.schema import VersionRow
from tests.hub.folders import make_folder


def _blob_path(hub: Hub, sha: str) -> Path:
    return hub.settings.home / "blobs/sha256" / sha[:2] / sha[2:]


def test_fsck_reports_missing_and_corrupt_blobs_naming_the_files(hub: Hub, tmp_path: Path) -> None:
    version = hub.push("acme/m", make_folder(tmp_path / "a", {"a.bin": "aaa", "b.bin": "bbb"}), "model")
    files = {f.path: f.sha256 for f in hub.info(version.ref).files}
    _blob_path(hub, files["a.bin"]).unlink()
    _blob_path(hub, files["b.bin"]).write_bytes(b"not bbb")
    report = fsck(hub)
    assert not report.ok
    assert report.missing == [f"acme/m:1 a.bin sha256:{files['a.bin']}"]
    assert report.corrupt == [f"acme/m:1 b.bin sha256:{files['b.bin']}"]
    assert fsck(hub, verify=False).corrupt == []  # --quick only checks presence


def test_fsck_reports_versions_whose_record_disagrees_with_their_files(hub: Hub, tmp_path: Path) -> None:
    hub.push("acme/m", make_folder(tmp_path / "a", {"a.bin": "aaa"}), "model")
    with hub.engine.begin() as conn:
        conn.execute(update(VersionRow).values(file_count=2))
    assert fsck(hub).incomplete == ["acme/m:1"]


def test_gc_removes_only_unreferenced_blobs(hub: Hub, tmp_path: Path) -> None:
    hub.push("acme/keep", make_folder(tmp_path / "k", {"shared": "S", "k": "K"}), "model")
    hub.push("acme/drop", make_folder(tmp_path / "d", {"shared": "S", "d": "DD"}), "model")
    hub.rm("acme/drop")
    report = fsck(hub)
    assert report.ok and len(report.orphans) == 1 and report.orphan_bytes == 2
    dry = gc(hub, dry_run=True)
    assert dry.removed == report.orphans and len(list(hub.blobs.list())) == 3
    result = gc(hub)
    assert result.bytes_freed == 2 and len(list(hub.blobs.list())) == 2
    hub.pull("acme/keep", tmp_path / "out")
    assert (tmp_path / "out/shared").read_text() == "S"
