"""What a push stores: the list of (path, file) pairs under a folder, checked so that nothing outside
the pushed folder gets in, and the content digest of a version's file manifest."""

from __future__ import annotations

import hashlib
import json
import os
import stat
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from fmstack.errors import InvalidInput, NotFound


@dataclass(frozen=True)
class ManifestEntry:
    path: str  # POSIX path relative to the version root
    sha256: str
    size: int


def check_relative_path(name: str) -> str:
    """A version-relative path must stay inside the version: no absolute names, no ``..``."""
    pure = PurePosixPath(name.replace("\\", "/"))
    if not name or pure.is_absolute() or ".." in pure.parts or str(pure) in {".", ""}:
        raise InvalidInput(f"file name {name!r} escapes the pushed folder: use a relative path without '..'")
    return str(pure)


def collect_files(path: Path) -> list[tuple[str, Path]]:
    """The files to push from ``path`` (a folder or one file), sorted by their relative path.

    Symlinks are followed only when they point inside the pushed folder; a link that escapes it, or a
    special file (socket, device), is refused rather than silently skipped."""
    if not path.exists():
        raise NotFound(f"nothing to push at {str(path)!r}: no such file or folder")
    if path.is_file():
        return [(_utf8_name(check_relative_path(path.name)), path)]
    if not path.is_dir():
        raise InvalidInput(
            f"{str(path)!r} is {_special_kind(path)}, not a regular file or a folder: push a file or a folder of files"
        )
    root = path.resolve()
    files: list[tuple[str, Path]] = []
    for dirpath, dirnames, filenames in os.walk(path, followlinks=False):
        here = Path(dirpath)
        for name in dirnames + filenames:
            entry = here / name
            rel = entry.relative_to(path).as_posix()
            if entry.is_symlink():
                target = entry.resolve()
                if not target.is_relative_to(root):
                    raise InvalidInput(
                        f"{rel!r} is a symlink to {str(target)!r}, outside the pushed folder; "
                        "copy the file in or remove the link"
                    )
                if target.is_dir():
                    raise InvalidInput(f"{rel!r} is a symlink to a folder; push the folder itself instead")
            if name in filenames:
                if not entry.is_file():
                    raise InvalidInput(
                        f"{rel!r} is {_special_kind(entry)}, not a regular file; remove it before pushing"
                    )
                files.append((_utf8_name(check_relative_path(rel)), entry))
    if not files:
        raise InvalidInput(f"{str(path)!r} is an empty folder: there is nothing to push")
    return sorted(files)


def _special_kind(path: Path) -> str:
    mode = path.stat().st_mode
    if stat.S_ISFIFO(mode):
        return "a named pipe (FIFO)"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    return "a special file"


def _utf8_name(rel: str) -> str:
    """Names are stored as UTF-8 text; a name the OS gave as undecodable bytes is refused up front."""
    try:
        rel.encode("utf-8")
    except UnicodeEncodeError:
        raw = os.fsencode(rel)
        raise InvalidInput(
            f"file name {raw!r} is not valid UTF-8, and the hub stores names as UTF-8 text: rename it "
            "(e.g. `convmv -f latin1 -t utf-8 -r --notest FOLDER`); nothing was stored"
        ) from None
    return rel


def manifest_digest(entries: Iterable[ManifestEntry]) -> str:
    """sha256 over the sorted (path, sha256, size) triples: equal content, equal digest."""
    canonical = [[e.path, e.sha256, e.size] for e in sorted(entries, key=lambda e: e.path)]
    return hashlib.sha256(json.dumps(canonical, separators=(",", ":")).encode()).hexdigest()
