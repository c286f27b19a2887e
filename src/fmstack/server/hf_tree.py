"""The file side of the Hugging Face-compatible API, as pure functions over a version's manifest:
which path parameters are acceptable, the JSON entries of a tree listing, and its pages.

A file is only ever found by looking its path up in the manifest (a ``FileInfo`` list), never by
building a filesystem path from what the client sent (``server.paths.file_path`` refuses
traversal-looking paths before they get here). Knows nothing of HTTP, the database or the blob store.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from fmstack.errors import InvalidInput, clip
from fmstack.hub.entities import FileInfo

PAGE_SIZE = 1000  # entries per tree page, as on huggingface.co (the client follows the Link header)
_LFS_POINTER = "version https://git-lfs.github.com/spec/v1\noid sha256:{sha256}\nsize {size}\n"


def find_file(files: Sequence[FileInfo], path: str) -> FileInfo | None:
    """The manifest entry named exactly ``path``."""
    for file in files:
        if file.path == path:
            return file
    return None


@dataclass(frozen=True)
class Commit:
    """What a tree entry says of the version it belongs to (``expand=true``)."""

    sha: str
    title: str
    date: str


def tree_entries(
    files: Sequence[FileInfo], folder: str, *, recursive: bool, commit: Commit | None
) -> list[dict[str, Any]] | None:
    """The entries under ``folder`` ("" for the root), sorted by path: files and the folders they
    sit in (immediate children only unless ``recursive``). None when ``folder`` holds nothing, i.e.
    is not a folder of this version."""
    prefix = f"{folder}/" if folder else ""
    inside = [f for f in files if f.path.startswith(prefix)]
    if not inside:
        return None
    folders: set[str] = set()
    entries: dict[str, dict[str, Any]] = {}
    for file in inside:
        rest = file.path[len(prefix) :].split("/")
        depth = len(rest) if recursive else 1
        for i in range(1, min(depth, len(rest) - 1) + 1):
            folders.add(prefix + "/".join(rest[:i]))
        if recursive or len(rest) == 1:
            entries[file.path] = file_entry(file, commit)
    for name in folders:
        entries[name] = _folder_entry(name, commit)
    return [entries[k] for k in sorted(entries)]


def file_entry(file: FileInfo, commit: Commit | None) -> dict[str, Any]:
    """A file as the Hub lists it. Every fmstack file is addressed by its sha256, so each is shown as
    a git-LFS file: ``lfs.oid`` is the sha256 the client may check, ``oid`` the pointer's git id."""
    pointer = _LFS_POINTER.format(sha256=file.sha256, size=file.size)
    entry: dict[str, Any] = {
        "type": "file",
        "path": file.path,
        "size": file.size,
        "oid": file.sha256[:40],
        "lfs": {"oid": file.sha256, "size": file.size, "pointerSize": len(pointer)},
    }
    if commit is not None:
        entry["lastCommit"] = {"id": commit.sha, "title": commit.title, "date": commit.date}
        entry["securityFileStatus"] = {"status": "safe", "avScan": {}, "pickleImportScan": {}}
    return entry


def _folder_entry(path: str, commit: Commit | None) -> dict[str, Any]:
    entry: dict[str, Any] = {"type": "directory", "path": path, "oid": "0" * 40, "size": 0}
    if commit is not None:
        entry["lastCommit"] = {"id": commit.sha, "title": commit.title, "date": commit.date}
    return entry


def page(
    entries: list[dict[str, Any]], cursor: str | None, limit: int
) -> tuple[list[dict[str, Any]], int | None]:
    """One page of a listing and the cursor of the next page (None on the last). The cursor is the
    offset of the next entry: versions are immutable, so offsets stay valid across requests."""
    start = _offset(cursor)
    end = start + limit
    return entries[start:end], (end if end < len(entries) else None)


def _offset(cursor: str | None) -> int:
    if cursor is None or cursor == "":
        return 0
    if not cursor.isdigit() or len(cursor) > 12:
        raise InvalidInput(f"bad cursor {clip(cursor)!r}: follow the Link header of the previous page")
    return int(cursor)


def hub_date(at: datetime) -> str:
    """A timestamp as the Hub writes it, in UTC with a ``Z``: ``2024-05-01T12:00:00.000Z`` (SQLite
    hands back naive datetimes; the hub stores UTC)."""
    utc = at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"
