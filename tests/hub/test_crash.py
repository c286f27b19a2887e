"""Work killed with SIGKILL leaves nothing that fsck and gc cannot see: a push leaves no visible partial
version, at most orphan blobs and an unfinished upload; an ingest leaves its temp folder under
FMSTACK_HOME, not in the system temp folder; a pull leaves partial files that the next pull removes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from fmstack.cli import main as cli_main
from fmstack.hub import Hub
from fmstack.hub.maintenance import fsck, gc
from fmstack.hub.scratch import owner_tag
from fmstack.settings import Settings
from tests.hub.conftest import METADATA_BACKENDS
from tests.hub.folders import make_folder

PUSHER = """
import sys
from fmstack.hub import Hub
hub = Hub.open()
print("ready", flush=True)
sys.stdin.readline()
hub.push("acme/big", sys.argv[1], "model")
print("done", flush=True)
"""


@pytest.mark.parametrize("backend_settings", METADATA_BACKENDS, indirect=True)
@pytest.mark.parametrize("delay", [0.0, 0.01, 0.03, 0.06, 0.1, 0.2, 0.4])
def test_sigkill_during_push_leaves_no_partial_version(
    backend_settings: Settings, tmp_path: Path, delay: float
) -> None:
    files = {f"shard-{i:02d}.bin": os.urandom(512 * 1024) for i in range(48)}
    folder = make_folder(tmp_path / "big", files)
    with Hub(backend_settings) as hub:  # create the schema first: the kill should hit the push itself
        hub.push("acme/other", make_folder(tmp_path / "small", {"a": "1"}), "model")
    child = subprocess.Popen(
        [sys.executable, "-c", PUSHER, str(folder)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert child.stdout is not None and child.stdin is not None
    assert child.stdout.readline().strip() == "ready"
    child.stdin.write("go\n")
    child.stdin.flush()
    time.sleep(delay)
    child.send_signal(signal.SIGKILL)
    child.wait(timeout=30)

    with Hub(backend_settings) as hub:
        versions = [r for r in hub.ls() if r.repo == "acme/big"]
        if versions:  # the kill came after the commit: the version must be whole
            detail = hub.info("acme/big")
            assert sorted(f.path for f in detail.files) == sorted(files)
            hub.pull("acme/big", tmp_path / "out")
            assert all((tmp_path / "out" / n).read_bytes() == b for n, b in files.items())
        report = fsck(hub)
        assert report.ok, report
        gc(hub)
        after = fsck(hub)
        assert after.ok and after.orphans == []
        assert list((backend_settings.home / "blobs/tmp").glob("*.part")) == []


# The real CLI in a child process, paused inside its work (the patched function prints "paused" and
# sleeps), so that the test can look at what it has written while it is alive, then SIGKILL it.
PAUSED_CLI = """
import sys, time
import {module} as target
{setup}
def paused(*args, **kwargs):
    {before}
    print("paused", flush=True)
    time.sleep(600)
target.{func} = paused
from fmstack.cli.main import main
sys.exit(main(sys.argv[1:]))
"""


def _start_paused(module: str, func: str, *args: str, before: str = "pass") -> subprocess.Popen[str]:
    code = PAUSED_CLI.format(module=module, func=func, setup="", before=before)
    child = subprocess.Popen(
        [sys.executable, "-c", code, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    assert child.stdout is not None
    line = child.stdout.readline()
    # A pull copies files on several threads: two may reach the pause at once ("pausedpaused\n").
    if not line.startswith("paused"):
        child.kill()
        raise AssertionError(f"child did not reach its pause: {line!r} {child.communicate()[1]}")
    return child


def _kill(child: subprocess.Popen[str]) -> None:
    child.send_signal(signal.SIGKILL)
    child.communicate(timeout=30)


def test_a_killed_push_leaves_an_upload_that_fsck_lists_and_gc_removes(
    fmstack_home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with Hub(Settings.from_env()) as hub:
        hub.push("acme/other", make_folder(tmp_path / "small", {"a": "1"}), "model")
    big = make_folder(tmp_path / "big", {"w.bin": os.urandom(64 * 1024)})
    child = _start_paused(
        "fmstack.hub.blobs", "_copy_hashing", "hub", "push", "acme/big", str(big), "--kind", "model",
        before="args[1].write(args[0].read(4096)); args[1].flush()",
    )  # fmt: skip
    try:
        with Hub(Settings.from_env()) as hub:
            (upload,) = fsck(hub).leftovers
            assert upload.what == "unfinished upload" and upload.size == 4096 and upload.live
    finally:
        _kill(child)
    with Hub(Settings.from_env()) as hub:
        report = fsck(hub)
        assert report.ok and [(u.what, u.size, u.live) for u in report.leftovers] == [
            ("unfinished upload", 4096, False)
        ]
        dry = gc(hub, dry_run=True)
        assert [u.path for u in dry.leftovers] == [upload.path] and Path(upload.path).exists()
    assert cli_main.main(["hub", "fsck"]) == 0 and cli_main.main(["hub", "gc", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert out.count(f"leftover unfinished upload {upload.path} (4.1 KB)") == 2, out
    assert "`fmstack hub gc` removes the leftovers whose process is gone" in out
    assert "would remove 0 blobs, 0 B, and 1 leftover(s) of killed work, 4.1 KB" in out
    with Hub(Settings.from_env()) as hub:
        assert gc(hub).temp_files_removed == 1 and not Path(upload.path).exists()
        assert fsck(hub).leftovers == []


def test_a_killed_ingest_leaves_its_work_under_fmstack_home_for_gc(
    fmstack_home: Path, tmp_path: Path
) -> None:
    rows = "".join(f"row {i} with some words,label{i % 3}\n" for i in range(2000))
    (tmp_path / "train.csv").write_text("text,label\n" + rows)
    system_tmp = set(Path(tempfile.gettempdir()).glob("fmstack-ingest-*"))
    child = _start_paused(
        "fmstack.data.ingest", "_card", "data", "ingest", str(tmp_path / "train.csv"), "--name", "acme/raw"
    )
    try:
        with Hub(Settings.from_env()) as hub:
            (work,) = fsck(hub).leftovers
            assert work.what == "temp folder" and work.live and work.size > 1000
            assert Path(work.path).parent == fmstack_home / "tmp"
            assert gc(hub).leftovers == [] and Path(work.path).is_dir()  # a live process's work is kept
            (run,) = hub.runs.recent(kind="data.ingest")
            assert run.status == "running"  # recorded when the work started
    finally:
        _kill(child)
    assert set(Path(tempfile.gettempdir()).glob("fmstack-ingest-*")) == system_tmp
    with Hub(Settings.from_env()) as hub:
        assert [(left.what, left.live) for left in fsck(hub).leftovers] == [("temp folder", False)]
        assert hub.runs.get(run.id).status == "abandoned"
        removed = gc(hub)
        assert [left.path for left in removed.leftovers] == [
            work.path
        ] and removed.leftover_bytes == work.size
        assert not Path(work.path).exists() and fsck(hub).leftovers == []


def test_a_second_pull_removes_the_partial_files_of_a_killed_one(fmstack_home: Path, tmp_path: Path) -> None:
    files = {"w.bin": os.urandom(64 * 1024), "sub/config.json": "{}"}
    with Hub(Settings.from_env()) as hub:
        hub.push("acme/m", make_folder(tmp_path / "src", files), "model")
    dest = tmp_path / "dest"
    child = _start_paused(
        "fmstack.hub.blobs", "_copy_hashing", "hub", "pull", "acme/m", str(dest),
        before="args[1].write(args[0].read(100)); args[1].flush()",
    )  # fmt: skip
    _kill(child)
    partials = sorted(p.name for p in dest.rglob(".*.part"))
    assert partials and all(p.startswith((".w.bin.", ".config.json.")) for p in partials)
    mine = dest / f".w.bin.{owner_tag()}-0000abcd.part"  # a pull of a live process: not touched
    older = dest / ".w.bin.0123abcd.part"  # named by an older fmstack, without its owner
    other = dest / ".notes.txt.0123abcd.part"  # not a file of this version: not ours to remove
    for path in (mine, older, other):
        path.write_bytes(b"x")
    with Hub(Settings.from_env()) as hub:
        hub.pull("acme/m", dest)
    assert sorted(p.name for p in dest.rglob(".*.part")) == sorted([mine.name, other.name])
    assert (dest / "w.bin").read_bytes() == files["w.bin"]


def _start_training(hub: Hub, tmp_path: Path) -> tuple[subprocess.Popen[bytes], int]:
    """A real `fmstack train finetune` of a tiny model, once it is past its first logged step."""
    from tests.train.conftest import push_classification, push_tiny_bert

    base, data = push_tiny_bert(hub, tmp_path / "base"), push_classification(hub, tmp_path / "data")
    args = ["train", "finetune", "--base", base, "--data", data, "-b", "8", "--epochs", "200"]
    child = subprocess.Popen([str(Path(sys.executable).with_name("fmstack")), *args, "--output", "acme/t"])
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline and child.poll() is None:
        running = [r for r in hub.runs.recent(kind="train") if r.status == "running"]
        if running and hub.runs.metrics(running[0].id):
            return child, running[0].id
        time.sleep(0.1)
    child.kill()
    raise AssertionError("training did not start within 180 s")


@pytest.mark.slow
def test_sigterm_fails_a_training_run_and_sigkill_leaves_its_folder_for_gc(
    hub: Hub, fmstack_home: Path, tmp_path: Path
) -> None:
    system_tmp = set(Path(tempfile.gettempdir()).glob("fmstack-train-*"))
    child, run_id = _start_training(hub, tmp_path / "a")
    child.send_signal(signal.SIGTERM)
    assert child.wait(timeout=60) == 130  # "interrupted", as for Ctrl-C
    run = hub.runs.get(run_id)
    assert run.status == "failed" and run.spec["error"] == "interrupted (SIGTERM)"
    assert fsck(hub).leftovers == []  # its scratch folder went with it

    child, run_id = _start_training(hub, tmp_path / "b")
    (work,) = fsck(hub).leftovers
    assert work.live and Path(work.path).name.startswith(
        f"train-{owner_tag().rpartition('-')[0]}-{child.pid}-"
    )
    child.send_signal(signal.SIGKILL)
    child.wait(timeout=60)
    assert hub.runs.get(run_id).status == "abandoned"
    assert [(left.path, left.live) for left in fsck(hub).leftovers] == [(work.path, False)]
    assert [left.path for left in gc(hub).leftovers] == [work.path] and not Path(work.path).exists()
    assert set(Path(tempfile.gettempdir()).glob("fmstack-train-*")) == system_tmp
