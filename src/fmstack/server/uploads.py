"""Resumable blob uploads: bytes arrive in chunks at a known offset, are kept in a partial file named
by the server (from the declared sha256, never from a client's path), and become a blob only once
the whole file hashes to its declared sha256. A blob in the store is therefore always verified, and
a version can only name verified blobs.

One partial file per sha256 and user, in ``FMSTACK_HOME/server-uploads``; a file lock per partial
orders its writers across threads and processes. (One lock per sha256, held while a body streams
in, let anyone who knew a digest stall every other user's upload of it with a slow body, until their
wait ran out as a 500.) A client that lost its connection asks how much
arrived (``received``) and continues from there; a chunk at the wrong offset is refused with the
offset to use (``Conflict``), so two clients uploading the same blob cannot interleave bytes. Partial
files untouched for ``STALE_S`` (a push given up on) are removed when a server starts, and what one
user's unfinished uploads may hold at once is bounded (``max_pending_bytes``), so a write token cannot
fill the server's disk with files it never finishes.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import anyio.to_thread
import filelock
from filelock import FileLock

from fmstack.errors import Conflict, IntegrityError
from fmstack.hub.blobs import BlobStore
from fmstack.server.http_errors import UploadTooLarge
from fmstack.server.paths import sha256_of

STALE_S = 7 * 24 * 3600
LOCK_WAIT_S = 120.0


@dataclass(frozen=True)
class UploadState:
    sha256: str
    size: int
    received: int
    complete: bool


class OffsetMismatch(Conflict):
    """A chunk sent for an offset other than what the server holds; ``received`` is where to resume."""

    def __init__(self, message: str, received: int) -> None:
        super().__init__(message)
        self.received = received


class Uploads:
    def __init__(self, folder: Path, blobs: BlobStore, max_bytes: int, max_pending_bytes: int) -> None:
        self._folder = folder
        self._blobs = blobs
        self._max_bytes = max_bytes
        self._max_pending_bytes = max_pending_bytes

    def sweep(self, older_than_s: float = STALE_S) -> list[Path]:
        """Remove partial uploads untouched for ``older_than_s`` seconds; the paths removed."""
        if not self._folder.is_dir():
            return []
        cutoff = time.time() - older_than_s
        removed = []
        for partial in self._folder.glob("*.part"):
            with contextlib.suppress(FileNotFoundError):
                if partial.stat().st_mtime < cutoff:
                    partial.unlink()
                    removed.append(partial)
        return removed

    def _partial(self, sha256: str, user: str) -> Path:
        # One partial per user and blob: a user cannot finish another's half-sent file (and so name
        # bytes they never had); user names are letters, digits, '.', '_' and '-' (accounts.check_name).
        return self._folder / f"{sha256_of(sha256)}.{user}.part"

    def _lock(self, sha256: str, user: str) -> FileLock:
        self._folder.mkdir(parents=True, exist_ok=True)
        # Not thread-local: acquired on a worker thread, released on the event loop's.
        return FileLock(str(self._folder / f"{sha256_of(sha256)}.{user}.lock"), thread_local=False)

    def check_size(self, size: int) -> None:
        if size > self._max_bytes:
            raise UploadTooLarge(
                f"a file of {size:,} bytes is over this server's upload limit of {self._max_bytes:,} bytes "
                "(`fmstack server start --max-upload-bytes`)"
            )

    def _pending_elsewhere(self, sha256: str, user: str) -> int:
        """Bytes the user's other unfinished uploads hold (partial files are ``<sha256>.<user>.part``)."""
        if not self._folder.is_dir():
            return 0
        total = 0
        for partial in self._folder.glob(f"*.{user}.part"):
            # A glob on the user alone also matches user "b.c" for "c": the name must match whole.
            if partial.name[65:-5] == user and partial.name[:64] != sha256:
                with contextlib.suppress(FileNotFoundError):
                    total += partial.stat().st_size
        return total

    def check_pending(self, sha256: str, size: int, user: str) -> None:
        """Refuse to start or continue an upload that would take the user's unfinished bytes over the
        budget (counting this file at its declared size: it will hold that much before it is done)."""
        pending = self._pending_elsewhere(sha256_of(sha256), user)
        if pending + size > self._max_pending_bytes:
            raise UploadTooLarge(
                f"{user}'s unfinished uploads hold {pending:,} bytes; with this file of {size:,} bytes they "
                f"would pass this server's budget of {self._max_pending_bytes:,} bytes per user "
                "(`fmstack server start --max-pending-bytes`): finish or drop the other pushes first"
            )

    def state(self, sha256: str, size: int, owned: bool, user: str) -> UploadState:
        """How much of this blob arrived. A blob already stored counts as complete only for a caller
        who ``owned`` it (may name it: see ``claims.py``); anyone else proves they hold it by sending it."""
        if owned and self._blobs.has(sha256_of(sha256)):
            return UploadState(sha256, size, size, True)
        partial = self._partial(sha256, user)
        received = partial.stat().st_size if partial.exists() else 0
        return UploadState(sha256, size, received, False)

    async def write(
        self, sha256: str, size: int, offset: int, chunks: AsyncIterator[bytes], owned: bool, user: str
    ) -> UploadState:
        """Append the chunks at ``offset``; when the file is whole, verify it and store it as a blob."""
        self.check_size(size)
        self.check_pending(sha256, size, user)
        lock = self._lock(sha256, user)
        # Waiting for the lock and hashing a whole file take long: off the event loop.
        try:
            await anyio.to_thread.run_sync(lambda: lock.acquire(timeout=LOCK_WAIT_S))
        except filelock.Timeout:
            raise Conflict(
                f"another upload of sha256:{sha256} by {user} is still sending; let it finish (or drop it), "
                "then ask how much arrived and resume"
            ) from None
        try:
            return await self._write_locked(sha256, size, offset, chunks, owned, user)
        finally:
            lock.release()

    async def _write_locked(
        self, sha256: str, size: int, offset: int, chunks: AsyncIterator[bytes], owned: bool, user: str
    ) -> UploadState:
        current = self.state(sha256, size, owned, user)
        if current.complete:
            return current
        if offset != current.received:
            raise OffsetMismatch(
                f"this upload of sha256:{sha256} holds {current.received:,} bytes: send from offset "
                f"{current.received}, not {offset}",
                current.received,
            )
        partial = self._partial(sha256, user)
        with open(partial, "ab") as out:
            written = offset
            async for chunk in chunks:
                written += len(chunk)
                if written > size:
                    out.truncate(offset)
                    raise UploadTooLarge(f"more bytes than the declared size {size:,} of sha256:{sha256}")
                out.write(chunk)
            out.flush()
            os.fsync(out.fileno())
        if written < size:
            return UploadState(sha256, size, written, False)
        return await anyio.to_thread.run_sync(self._finish, sha256, size, partial)

    def _finish(self, sha256: str, size: int, partial: Path) -> UploadState:
        try:
            with open(partial, "rb") as fin:
                actual = hashlib.file_digest(fin, "sha256").hexdigest()
            if actual != sha256:
                raise IntegrityError(
                    f"the uploaded bytes hash to sha256:{actual}, not the declared sha256:{sha256}; nothing "
                    "was stored: the file changed or was damaged on the way, push again"
                )
            stored = self._blobs.put_file(partial)
            if stored.sha256 != sha256:  # the partial changed under us: the store's own hash decides
                raise IntegrityError(
                    f"the stored bytes of sha256:{sha256} hash to {stored.sha256}; push again"
                )
        finally:
            partial.unlink(missing_ok=True)
        return UploadState(sha256, size, size, True)
