"""Scratch folders live under FMSTACK_HOME/tmp, are named for their owner, go away when the work ends,
and are told apart as live (owner running, or on another machine) or left behind."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

import fmstack
from fmstack.errors import Conflict
from fmstack.hub.scratch import (
    owner_tag,
    resumable_dir,
    resumable_work,
    scratch_dir,
    temp_folders,
    this_host,
)


def test_a_scratch_folder_is_removed_when_the_work_ends_or_fails(tmp_path: Path) -> None:
    with scratch_dir(tmp_path, "ingest") as folder:
        assert folder.parent == tmp_path / "tmp" and folder.name.startswith(f"ingest-{owner_tag()}-")
        (folder / "sub").mkdir()
        (folder / "sub/x").write_text("x")
        (folder / "sub").chmod(0o555)  # read-only trees (checkouts) are removed too
        assert [(f.what, f.live, f.size) for f in temp_folders(tmp_path)] == [("temp folder", True, 1)]
    assert temp_folders(tmp_path) == []
    with pytest.raises(RuntimeError), scratch_dir(tmp_path, "train") as folder:
        raise RuntimeError("boom")
    assert not folder.exists()


def test_folders_of_dead_processes_are_leftovers_and_other_machines_are_trusted(tmp_path: Path) -> None:
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    root = tmp_path / "tmp"
    for name in (
        f"ingest-{this_host()}-{int(dead.stdout)}-abc",
        "train-other-machine.example-1-abc",
        "no-owner",
    ):
        (root / name).mkdir(parents=True)
    live = {Path(f.path).name: f.live for f in temp_folders(tmp_path)}
    assert live == {
        f"ingest-{this_host()}-{int(dead.stdout)}-abc": False,
        "train-other-machine.example-1-abc": True,
        "no-owner": False,
    }


def test_resumable_work_is_held_by_its_live_process_and_left_over_when_it_is_gone(tmp_path: Path) -> None:
    work = resumable_dir(tmp_path, "process", "abc", fresh=True)
    (work / "stage-0").mkdir()
    assert resumable_dir(tmp_path, "process", "abc", fresh=False) == work and (work / "stage-0").is_dir()
    assert [(f.what, f.live) for f in resumable_work(tmp_path)] == [("resumable work", True)]
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        (work / ".owner").write_text(f"{this_host()}-{holder.pid}")
        with pytest.raises(Conflict, match=f"running already \\(process {holder.pid}"):
            resumable_dir(tmp_path, "process", "abc", fresh=True)
        assert (work / "stage-0").is_dir()  # not emptied under its owner
    finally:
        holder.kill()
        holder.wait()
    assert [f.live for f in resumable_work(tmp_path)] == [False]
    assert list(resumable_dir(tmp_path, "process", "abc", fresh=True).iterdir()) == [work / ".owner"]


# tempfile's functions that make files or folders, by default in the system temp folder
_MAKES_TEMP = {"mkdtemp", "mkstemp", "TemporaryDirectory", "TemporaryFile", "NamedTemporaryFile"}


def _system_temp_uses(source: str) -> list[int]:
    """Lines that make something in the system temp folder: a tempfile call without ``dir=``, or
    ``gettempdir()``."""
    lines = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute | ast.Name):
            name = node.func.attr if isinstance(node.func, ast.Attribute) else node.func.id
            no_dir = all(k.arg != "dir" for k in node.keywords)
            if name == "gettempdir" or (name in _MAKES_TEMP and no_dir):
                lines.append(node.lineno)
    return lines


def test_no_work_goes_to_the_system_temp_folder() -> None:
    # Whatever a killed process leaves there, fsck cannot list and gc cannot remove: work goes in
    # scratch_dir (FMSTACK_HOME/tmp) or a folder the caller names.
    assert _system_temp_uses("tempfile.TemporaryDirectory(prefix='x')\nmkdtemp(dir=root)") == [1]
    src = Path(fmstack.__file__).parent
    found = {
        f"{path.relative_to(src)}:{line}"
        for path in src.rglob("*.py")
        for line in _system_temp_uses(path.read_text())
    }
    assert found == set()
