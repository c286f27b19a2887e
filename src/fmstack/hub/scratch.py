"""Scratch space: the temporary work folders of ingest, process, train and checkout, kept under
``$FMSTACK_HOME/tmp`` (never the system temp folder, whose leftovers nothing here could see), the
resumable work folders of long jobs under ``$FMSTACK_HOME/work``, and the leftovers that killed
processes leave in both, for ``fsck`` to list and ``gc`` to remove.

A folder is named ``<kind>-<host>-<pid>-<random>``, so a later process can tell the work of a process
still running on this machine (kept) from that of one that is gone (a leftover). Work of another
machine sharing the folder cannot be checked and is kept. Knows nothing of repos or versions.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import shutil
import socket
import stat
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from fmstack.errors import Conflict
from fmstack.hub.writes import write_error

_UNSAFE = re.compile(r"[^A-Za-z0-9.-]")
_NO_ROOM = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)
_SCRATCH_WAY_OUT = (
    "its work was removed. Free space there (`fmstack hub gc` removes unreferenced blobs and leftovers "
    "of killed work), or point FMSTACK_HOME at a disk with room"
)


@dataclass(frozen=True)
class Leftover:
    """Something a writer left behind: a temp folder, an unfinished upload, resumable work, a checkout,
    a training run's checkpoints."""

    path: str
    what: str  # "temp folder" | "unfinished upload" | "resumable work" | "checkpoints of ..." | ...
    size: int
    live: bool  # its process may still be running (here, or on another machine): gc keeps it
    keep: str = ""  # why gc keeps it although no process holds it (checkpoints --resume can use)


def this_host() -> str:
    return _UNSAFE.sub("_", socket.gethostname()) or "localhost"


def is_running(host: str, pid: int) -> bool:
    """Whether process ``pid`` of ``host`` may still be running: only this machine's can be checked."""
    return host != this_host() or pid_alive(pid)


def pid_alive(pid: int) -> bool:
    """Whether process ``pid`` exists on this machine (signal 0 checks without sending anything)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, another user's
        return True
    return True


def owner_tag() -> str:
    """``<host>-<pid>``: put in temp names so that their owner can be checked later."""
    return f"{this_host()}-{os.getpid()}"


def parse_owner(tag: str) -> tuple[str, int] | None:
    """``(host, pid)`` from a name ending in ``<host>-<pid>``, or None when it does not."""
    host, _, pid = tag.rpartition("-")
    return (host, int(pid)) if host and pid.isdigit() else None


def scratch_root(home: Path) -> Path:
    return home / "tmp"


@contextmanager
def scratch_dir(home: Path, kind: str) -> Iterator[Path]:
    """A fresh folder under ``$FMSTACK_HOME/tmp`` for one piece of work, removed when it ends; a
    process killed before then leaves it for ``gc``."""
    root = scratch_root(home)
    root.mkdir(parents=True, exist_ok=True)
    path = Path(tempfile.mkdtemp(dir=root, prefix=f"{kind}-{owner_tag()}-"))
    try:
        yield path
    except OSError as exc:
        # Only a write fails for lack of room or over a size limit, and the work writes here.
        problem = write_error(exc, root, _SCRATCH_WAY_OUT) if exc.errno in _NO_ROOM else None
        if problem is None:
            raise
        raise problem from None
    finally:
        remove_tree(path)


def work_root(home: Path) -> Path:
    return home / "work"


def resumable_dir(home: Path, kind: str, key: str, *, fresh: bool) -> Path:
    """``$FMSTACK_HOME/work/<kind>-<key>``: work a later run of the same job can resume, claimed by this
    process (its ``.owner`` file names host and pid, so fsck and gc tell a running job's work from a
    killed one's). ``fresh`` empties it first. Refused while a live process of this machine holds it."""
    path = work_root(home) / f"{kind}-{key}"
    owner = _owner_of(path)
    if owner is not None and owner != parse_owner(owner_tag()) and is_running(*owner):
        raise Conflict(
            f"the same {kind} job is running already (process {owner[1]} on {owner[0]}), in {path}; "
            "wait for it to finish, or stop it and run this again with --resume"
        )
    if fresh:
        remove_tree(path)
    path.mkdir(parents=True, exist_ok=True)
    (path / ".owner").write_text(owner_tag())
    return path


def resumable_work(home: Path) -> list[Leftover]:
    """Every folder under ``$FMSTACK_HOME/work``: a killed or failed job's, or one still running."""
    root = work_root(home)
    if not root.is_dir():
        return []
    found = []
    for path in sorted(p for p in root.iterdir() if p.is_dir()):
        owner = _owner_of(path)
        found.append(
            Leftover(str(path), "resumable work", tree_size(path), owner is not None and is_running(*owner))
        )
    return found


def _owner_of(path: Path) -> tuple[str, int] | None:
    try:
        return parse_owner((path / ".owner").read_text().strip())
    except OSError:
        return None


def remove_tree(path: Path) -> None:
    """``rmtree`` that also removes read-only trees (checkouts are made read-only), or one file."""
    if not path.exists() and not path.is_symlink():
        return
    if not path.is_dir() or path.is_symlink():
        path.unlink()
        return
    for dirpath, _dirs, _files in os.walk(path):
        with contextlib.suppress(OSError):  # not ours to change: rmtree reports what it cannot remove
            os.chmod(dirpath, stat.S_IRWXU)
    shutil.rmtree(path, ignore_errors=True)


def temp_folders(home: Path) -> list[Leftover]:
    """Every folder under ``$FMSTACK_HOME/tmp``, with its size and whether its owner may be running."""
    root = scratch_root(home)
    if not root.is_dir():
        return []
    found = []
    for path in sorted(root.iterdir()):
        owner = parse_owner(path.name.rpartition("-")[0].partition("-")[2])
        live = owner is not None and is_running(*owner)
        found.append(Leftover(str(path), "temp folder", tree_size(path), live))
    return found


def tree_size(path: Path) -> int:
    if not path.is_dir():
        return path.lstat().st_size if path.exists() or path.is_symlink() else 0
    total = 0
    for dirpath, _dirs, files in os.walk(path):
        for name in files:
            with contextlib.suppress(FileNotFoundError):  # removed while we looked
                total += os.lstat(os.path.join(dirpath, name)).st_size
    return total
