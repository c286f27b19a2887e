"""Writes the user can fix fail with exit code 1, the problem and the way out, and leave nothing behind:
a full disk or a file size limit during push, a pull destination under a file or on a read-only
folder, a file name that is not UTF-8, a FIFO given as what to push."""

from __future__ import annotations

import os
import resource
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from fmstack.cli import main as cli_main
from fmstack.hub import Hub
from fmstack.settings import Settings
from tests.hub.folders import make_folder
from tests.hub.mounts import read_only, tiny_disk


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    code = cli_main.main(list(args))
    return code, " ".join(capsys.readouterr().err.split())


def test_push_on_a_full_disk_is_a_user_error_that_stores_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    with tiny_disk(tmp_path / "disk") as disk:
        monkeypatch.setenv("FMSTACK_HOME", str(disk / "home"))
        monkeypatch.delenv("FMSTACK_DATABASE_URL", raising=False)
        monkeypatch.delenv("FMSTACK_STORE_URL", raising=False)
        big = make_folder(tmp_path / "big", {"w.bin": os.urandom(2 * 1024 * 1024)})
        code, err = run(capsys, "hub", "push", "acme/m", str(big), "--kind", "model")
        assert code == 1, err
        assert (
            "no space left on the disk" in err and "`fmstack hub gc`" in err and "nothing was stored" in err
        )
        with Hub(Settings.from_env()) as hub:
            assert hub.ls() == [] and list(hub.blobs.list()) == []
        assert list((disk / "home/blobs/tmp").iterdir()) == []


def test_pull_onto_a_full_disk_removes_the_folder_it_created(
    fmstack_home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with Hub(Settings.from_env()) as hub:
        hub.push("acme/m", make_folder(tmp_path / "src", {"w.bin": os.urandom(2 * 1024 * 1024)}), "model")
    with tiny_disk(tmp_path / "disk") as disk:
        code, err = run(capsys, "hub", "pull", "acme/m", str(disk / "new/dest"))
        assert code == 1 and "no space left on the disk" in err, err
        assert list(disk.iterdir()) == []


FSIZE_LIMITED_CLI = """
import resource, signal, sys
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # the write fails with EFBIG instead of killing us
resource.setrlimit(resource.RLIMIT_FSIZE, (1024 * 1024, resource.RLIM_INFINITY))
from fmstack.cli.main import main
sys.exit(main(sys.argv[1:]))
"""


def test_push_over_a_file_size_limit_is_a_user_error(fmstack_home: Path, tmp_path: Path) -> None:
    with Hub(Settings.from_env()):  # the database exists before the limit applies
        pass
    big = make_folder(tmp_path / "big", {"w.bin": os.urandom(2 * 1024 * 1024)})
    assert signal.SIGXFSZ and resource.RLIMIT_FSIZE  # both exist on this platform
    done = subprocess.run(
        [sys.executable, "-c", FSIZE_LIMITED_CLI, "hub", "push", "acme/m", str(big), "--kind", "model"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    err = " ".join(done.stderr.split())
    assert done.returncode == 1, done.stderr
    assert "a file is too large for" in err and "ulimit -f" in err and "internal error" not in err
    with Hub(Settings.from_env()) as hub:
        assert hub.ls() == [] and list(hub.blobs.list()) == []
    assert list((fmstack_home / "blobs/tmp").iterdir()) == []


def test_pull_under_a_file_or_into_a_read_only_folder_is_a_user_error(
    fmstack_home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with Hub(Settings.from_env()) as hub:
        hub.push("acme/m", make_folder(tmp_path / "src", {"w.bin": "weights", "sub/c.json": "{}"}), "model")
    (tmp_path / "a-file").write_text("x")
    code, err = run(capsys, "hub", "pull", "acme/m", str(tmp_path / "a-file/dest"))
    assert code == 1 and "is a file, not a folder; choose another destination" in err, err
    assert (tmp_path / "a-file").read_text() == "x"
    (tmp_path / "ro").mkdir()
    with read_only(tmp_path / "ro") as ro:
        code, err = run(capsys, "hub", "pull", "acme/m", str(ro / "dest"))
        assert code == 1 and "is read-only for this user" in err and "folder you can write to" in err, err
        assert list(ro.iterdir()) == []


def test_a_file_name_that_is_not_utf8_is_refused_before_anything_is_stored(
    fmstack_home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = make_folder(tmp_path / "src", {"ok.txt": "fine"})
    (folder / os.fsdecode(b"caf\xe9.txt")).write_text("latin-1 name")
    code, err = run(capsys, "hub", "push", "acme/m", str(folder), "--kind", "model")
    assert code == 1, err
    assert "file name b'caf\\xe9.txt' is not valid UTF-8" in err and "convmv" in err
    with Hub(Settings.from_env()) as hub:
        assert hub.ls() == [] and list(hub.blobs.list()) == []


def test_a_fifo_is_named_as_what_it_is(
    fmstack_home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    os.mkfifo(tmp_path / "pipe")
    code, err = run(capsys, "hub", "push", "acme/m", str(tmp_path / "pipe"), "--kind", "model")
    assert code == 1 and "is a named pipe (FIFO), not a regular file or a folder" in err, err
    folder = make_folder(tmp_path / "src", {"ok.txt": "fine"})
    os.mkfifo(folder / "pipe")
    code, err = run(capsys, "hub", "push", "acme/m", str(folder), "--kind", "model")
    assert code == 1 and "'pipe' is a named pipe (FIFO), not a regular file" in err, err


def test_an_ingest_that_fills_the_disk_is_a_user_error_and_a_failed_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = "".join(f"{os.urandom(24).hex()},label{i % 5}\n" for i in range(40_000))  # ~2 MB, incompressible
    (tmp_path / "train.csv").write_text("text,label\n" + rows)
    with tiny_disk(tmp_path / "disk", size="1m") as disk:
        monkeypatch.setenv("FMSTACK_HOME", str(disk / "home"))
        monkeypatch.delenv("FMSTACK_DATABASE_URL", raising=False)
        monkeypatch.delenv("FMSTACK_STORE_URL", raising=False)
        code, err = run(capsys, "data", "ingest", str(tmp_path / "train.csv"), "--name", "acme/raw")
        assert code == 1 and "no space left on the disk" in err and "its work was removed" in err, err
        assert list((disk / "home/tmp").iterdir()) == []
        with Hub(Settings.from_env()) as hub:
            (failed,) = hub.runs.recent(kind="data.ingest")
            assert failed.status == "failed" and "no space left" in failed.spec["error"]
