"""The checkout cache: read-only local copies of versions under ``$FMSTACK_HOME/cache/versions/<digest>``,
for loading a model or dataset in place.

Each copy has a stamp ``<digest>.json`` beside it with every file's size, modification time and write
bits when its bytes were last verified against their sha256. A cache hit costs one ``stat`` per file: a
copy whose files changed in any of those (or gained or lost a file) is re-hashed, and made again from
the blob store when it no longer matches. The stamp's own modification time is the copy's last use:
``gc`` removes copies unused for ``UNUSED_DAYS`` days, and copies of versions no longer in the hub once
unused for ``REMOVED_GRACE_S`` (a process that resolved the version before it was removed may still be
reading it). Knows nothing of the database.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
import stat
import time
from pathlib import Path

from fmstack.hub.scratch import Leftover, remove_tree, tree_size

UNUSED_DAYS = 14
REMOVED_GRACE_S = 3600
_READ_ONLY_FILE = stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH
_READ_ONLY_DIR = _READ_ONLY_FILE | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH

Snapshot = dict[str, list[int]]  # relative path -> [size, mtime_ns, writable]


def cache_root(home: Path) -> Path:
    return home / "cache" / "versions"


def stamp_of(folder: Path) -> Path:
    return folder.with_name(folder.name + ".json")


def snapshot(folder: Path) -> Snapshot:
    found: Snapshot = {}
    for dirpath, _dirs, files in os.walk(folder):
        for name in files:
            path = Path(dirpath) / name
            info = path.lstat()
            writable = int(bool(info.st_mode & 0o222))
            found[path.relative_to(folder).as_posix()] = [info.st_size, info.st_mtime_ns, writable]
    return found


def intact(folder: Path) -> bool:
    """Whether the copy is as it was when last verified (cheap: stats only)."""
    try:
        recorded = json.loads(stamp_of(folder).read_text())
    except (OSError, ValueError):
        return False
    return bool(recorded == snapshot(folder))


def seal(folder: Path) -> None:
    """Make the verified copy read-only and record its stamp."""
    for dirpath, dirs, files in os.walk(folder):
        for name in files:
            os.chmod(Path(dirpath) / name, _READ_ONLY_FILE)
        for name in dirs:
            os.chmod(Path(dirpath) / name, _READ_ONLY_DIR)
    os.chmod(folder, _READ_ONLY_DIR)
    stamp = stamp_of(folder)
    tmp = stamp.with_name(f".{stamp.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(snapshot(folder), sort_keys=True))
    os.replace(tmp, stamp)


def install(copy: Path, folder: Path) -> None:
    """Move a freshly pulled ``copy`` into the cache as ``folder`` (replacing a damaged one) and seal it.
    When another process installed the same version first, its copy is kept and ours dropped."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    if folder.exists() and not intact(folder):
        remove_tree(folder)
    try:
        copy.rename(folder)
    except OSError as exc:
        if exc.errno == errno.EXDEV:  # cache/ on another disk than tmp/ (a symlink): copy across
            shutil.move(copy, folder.with_name(f".{folder.name}.{os.getpid()}"))
            return install(folder.with_name(f".{folder.name}.{os.getpid()}"), folder)
        if not folder.is_dir():
            raise
        return
    seal(folder)


def touch(folder: Path) -> None:
    """Record a use (the stamp's time), for ``gc``; a read-only home simply keeps no record."""
    with contextlib.suppress(OSError):
        os.utime(stamp_of(folder))


def stale(home: Path, digests: set[str], now: float | None = None) -> list[Leftover]:
    """Copies ``gc`` may remove: unused for ``UNUSED_DAYS`` days, or of removed versions (``digests``
    are those the hub still has) and unused for ``REMOVED_GRACE_S``."""
    root = cache_root(home)
    if not root.is_dir():
        return []
    now = time.time() if now is None else now
    found = []
    for folder in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        try:
            idle = now - stamp_of(folder).stat().st_mtime
        except FileNotFoundError:  # no stamp: made by an older fmstack, or being installed right now
            idle = now - folder.stat().st_mtime
        removed = folder.name not in digests
        if idle > UNUSED_DAYS * 86400 or (removed and idle > REMOVED_GRACE_S):
            what = "checkout of a removed version" if removed else "unused checkout"
            found.append(Leftover(str(folder), what, tree_size(folder), live=False))
    return found


def remove(folder: Path) -> None:
    stamp_of(folder).unlink(missing_ok=True)
    remove_tree(folder)
