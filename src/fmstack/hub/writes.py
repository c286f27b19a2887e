"""Failed writes that are the user's to fix (a full disk, a read-only folder, a file size limit) turned
into errors that say what happened and what to do; anything else stays an ``OSError`` (a bug)."""

from __future__ import annotations

import errno
from pathlib import Path

from fmstack.errors import Unavailable

_FULL = (errno.ENOSPC, errno.EDQUOT)
_READ_ONLY = (errno.EROFS, errno.EACCES, errno.EPERM)
_NOT_A_FOLDER = (errno.ENOTDIR, errno.EEXIST)


def write_error(exc: OSError, where: Path | str, way_out: str) -> Unavailable | None:
    """``Unavailable`` naming ``where`` and ``way_out`` when ``exc`` is a write the user can fix."""
    reason = exc.strerror or str(exc)
    if exc.errno in _FULL:
        return Unavailable(f"no space left on the disk that holds {str(where)!r} ({reason}); {way_out}")
    if exc.errno == errno.EFBIG:
        return Unavailable(
            f"a file is too large for {str(where)!r} ({reason}: the filesystem's maximum or a "
            f"size limit such as `ulimit -f`); {way_out}"
        )
    if exc.errno in _READ_ONLY:
        return Unavailable(f"{str(where)!r} is read-only for this user ({reason}); {way_out}")
    if exc.errno in _NOT_A_FOLDER:
        return Unavailable(f"cannot create a folder at {str(exc.filename or where)!r} ({reason}); {way_out}")
    return None


def store_way_out() -> str:
    return (
        "nothing was stored. Free space (`fmstack hub gc` removes unreferenced blobs and leftovers of "
        "killed work) or point FMSTACK_HOME / FMSTACK_STORE_URL at a disk with room you can write to"
    )
