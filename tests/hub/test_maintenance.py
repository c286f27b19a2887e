"""fsck finds missing, corrupt and orphan blobs and incomplete versions; gc removes only orphans (and
leftovers, among them the checkpoints of succeeded training runs, never those --resume may need)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import update

from fmstack.cli.main import main
from fmstack.hub import Hub
from fmstack.hub.checkpoint_dirs import RESUMABLE, checkpoints_root, claim
from fmstack.hub.maintenance import fsck, gc
from fmstack.hub.schema import RunRow, VersionRow
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


def _checkpoints(hub: Hub, name: str, run_id: int | None, *entries: str) -> Path:
    """A checkpoint folder as training leaves it: ``step-N/state.json`` complete, ``.tmp-step-N`` not."""
    folder = checkpoints_root(hub.settings.home) / name
    folder.mkdir(parents=True)
    if run_id is not None:
        claim(folder, run_id)
    for entry in entries:
        (folder / entry).mkdir()
        (folder / entry / "state.json").write_text("{}" * 500)
    return folder


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", ""])
    child.wait()
    return child.pid


def test_fsck_lists_checkpoints_of_ended_runs_and_gc_removes_only_the_finished_ones(
    hub: Hub, capsys: pytest.CaptureFixture[str]
) -> None:
    def run(status: str) -> int:
        run_id = hub.runs.start("train", {})
        if status != "running":
            hub.runs.finish(run_id, status)  # type: ignore[arg-type]
        return run_id

    done = _checkpoints(hub, "done", run("succeeded"), "step-00000004")
    failed = _checkpoints(hub, "failed", run("failed"), "step-00000002", "step-00000004")
    killed_run = run("running")
    env = {**hub.runs.get(killed_run).environment, "pid": _dead_pid()}
    with hub.engine.begin() as conn:  # its process is gone: the run reads "abandoned"
        conn.execute(update(RunRow).where(RunRow.id == killed_run).values(environment=env))
    killed = _checkpoints(hub, "killed", killed_run, "step-00000002")
    _checkpoints(hub, "in-use", run("running"), "step-00000002")  # a training still going: not listed
    early = _checkpoints(hub, "early", run("failed"), ".tmp-step-00000002")  # none complete
    unclaimed = _checkpoints(hub, "unclaimed", None, "step-00000002")  # written before runs claimed them

    assert main(["hub", "fsck", "--json"]) == 0
    listed = {Path(left["path"]).name: left for left in json.loads(capsys.readouterr().out)["leftovers"]}
    assert {name: (left["what"], left["keep"]) for name, left in listed.items()} == {
        "done": ("checkpoints of succeeded run 1", ""),
        "failed": ("checkpoints of failed run 2", RESUMABLE),
        "killed": ("checkpoints of abandoned run 3", RESUMABLE),
        "early": ("checkpoints of failed run 5, none complete", ""),
        "unclaimed": ("checkpoints of no recorded run", RESUMABLE),
    }
    assert listed["failed"]["size"] == 2 * 1000 + len("2\n") and not listed["failed"]["live"]

    assert main(["hub", "fsck"]) == 0
    out = capsys.readouterr().out
    assert f"leftover checkpoints of failed run 2 {failed} (2.0 KB, kept: `fmstack train ... --resume`" in out
    assert "`fmstack hub gc` removes the leftovers whose process is gone" in out
    assert main(["hub", "gc", "--dry-run", "--json"]) == 0
    assert {Path(left["path"]).name for left in json.loads(capsys.readouterr().out)["leftovers"]} == {
        "done",
        "early",
    }
    assert main(["hub", "gc"]) == 0
    assert "removed 0 blobs, 0 B, and 2 leftover(s) of killed work, 2.0 KB" in capsys.readouterr().out
    assert not done.exists() and not early.exists()
    assert failed.is_dir() and killed.is_dir() and unclaimed.is_dir()
    assert sorted(p.name for p in checkpoints_root(hub.settings.home).iterdir()) == [
        "failed",
        "in-use",
        "killed",
        "unclaimed",
    ]
