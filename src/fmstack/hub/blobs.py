"""Content-addressed blob stores: bytes are kept under their sha256, written atomically, deduplicated
across every repo, and verified on every read. Knows nothing of repos or versions.

``open_blob_store(url)`` picks the backend by URL scheme: a plain path or ``file://`` gives the local
store (temp file, fsync, rename); any other fsspec URL (``s3://bucket/prefix``, ``memory://``) gives the
fsspec store, whose single-object puts are atomic on object stores.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Protocol

from fmstack.errors import IntegrityError, NotFound, Unsupported
from fmstack.hub.scratch import Leftover, is_running, owner_tag, parse_owner

CHUNK = 8 * 1024 * 1024
Leftovers = list[Leftover]  # named here: inside the stores, ``list`` is their method


@dataclass(frozen=True)
class StoredBlob:
    sha256: str
    size: int


class BlobStore(Protocol):
    def put_file(self, src: Path) -> StoredBlob: ...
    def has(self, sha256: str) -> bool: ...
    def read_to(self, sha256: str, dest: Path, label: str) -> None: ...
    def read_bytes(self, sha256: str, label: str) -> bytes: ...
    def open(self, sha256: str, label: str) -> BinaryIO: ...
    def verify(self, sha256: str) -> bool: ...
    def list(self) -> Iterator[str]: ...
    def size(self, sha256: str) -> int: ...
    def delete(self, sha256: str) -> None: ...
    def leftovers(self) -> Leftovers: ...
    def remove_leftover(self, left: Leftover) -> None: ...


def open_blob_store(url: str) -> BlobStore:
    if "://" not in url or url.startswith("file://"):
        return LocalBlobStore(Path(url.removeprefix("file://")).expanduser())
    return FsspecBlobStore(url)


def _rel(sha256: str) -> str:
    return f"sha256/{sha256[:2]}/{sha256[2:]}"


def _copy_hashing(src: BinaryIO, dst: BinaryIO) -> StoredBlob:
    """Copy ``src`` to ``dst`` and return the sha256 of the bytes that landed in ``dst``.

    The copy runs in the kernel (``copy_file_range``) one chunk ahead on a second thread while this
    thread hashes the chunk just written, read back from the page cache. Hashing the destination (not
    the source) makes the result correct by construction even if the source changes mid-copy, and the
    pipeline makes the cost about that of the hash alone. Falls back to a read-hash-write loop where
    the kernel cannot copy between the two files (other filesystems, pipes)."""
    src_fd, dst_fd = src.fileno(), dst.fileno()
    try:
        first = _copy_range(src_fd, dst_fd, 0)
    except OSError as exc:
        if exc.errno not in (errno.EXDEV, errno.ENOSYS, errno.EOPNOTSUPP, errno.EINVAL, errno.EBADF):
            raise
        return _copy_hashing_userspace(src, dst)
    digest, buf, offset = hashlib.sha256(), bytearray(CHUNK), 0
    with ThreadPoolExecutor(1) as copier:
        written = first
        while written:
            ahead = copier.submit(_copy_range, src_fd, dst_fd, offset + written)
            _hash_range(dst_fd, offset, written, digest, buf)
            offset += written
            written = ahead.result()
    return StoredBlob(digest.hexdigest(), offset)


def _copy_range(src_fd: int, dst_fd: int, offset: int) -> int:
    done = 0
    while done < CHUNK:
        n = os.copy_file_range(src_fd, dst_fd, CHUNK - done, offset + done, offset + done)
        if n == 0:
            break
        done += n
    return done


def _hash_range(fd: int, offset: int, length: int, digest: Any, buf: bytearray) -> None:
    view = memoryview(buf)
    while length:
        n = os.preadv(fd, [view[: min(length, CHUNK)]], offset)
        if n == 0:
            raise OSError(f"short read at offset {offset} while verifying a copy")
        digest.update(view[:n])
        offset, length = offset + n, length - n


def _copy_hashing_userspace(src: BinaryIO, dst: BinaryIO) -> StoredBlob:
    digest, size = hashlib.sha256(), 0
    buf = bytearray(CHUNK)
    view = memoryview(buf)
    while n := src.readinto(buf):  # type: ignore[attr-defined]
        chunk = view[:n]
        digest.update(chunk)
        dst.write(chunk)
        size += n
    return StoredBlob(digest.hexdigest(), size)


def partial_path(dest: Path) -> Path:
    """Where a read writes ``dest`` before renaming it into place: hidden, beside it (same
    filesystem), and named for its owner (``.NAME.<host>-<pid>-<random>.part``) so that a later pull
    can tell the leftovers of a killed one from the work of one still running."""
    return dest.with_name(f".{dest.name}.{owner_tag()}-{uuid.uuid4().hex[:8]}.part")


def stale_partials(folder: Path, names: set[str]) -> list[Path]:
    """Partial files in ``folder`` for the files ``names`` whose writer is gone (killed pulls)."""
    if not folder.is_dir():
        return []
    stale = []
    for entry in folder.iterdir():
        middle = _partial_of(entry.name, names)
        if middle is None:
            continue
        owner = parse_owner(middle.rpartition("-")[0])  # None for names of older fmstack versions
        if owner is None or not is_running(*owner):
            stale.append(entry)
    return stale


def _partial_of(entry: str, names: set[str]) -> str | None:
    """The ``<owner>-<random>`` part of ``.NAME.<owner>-<random>.part`` when NAME is one of ``names``
    (NAME may hold dots itself, so every split is tried)."""
    if not (entry.startswith(".") and entry.endswith(".part")):
        return None
    core = entry[1:-5]
    for i, char in enumerate(core):
        if char == "." and core[:i] in names:
            return core[i + 1 :]
    return None


def _write_verified(src: BinaryIO, dest: Path, sha256: str, label: str, *, kernel_copy: bool) -> None:
    """Copy ``src`` to a partial file beside ``dest`` (``partial_path``), hashing the bytes that
    landed, and rename it to ``dest`` only when they hash to ``sha256``: bad bytes never appear under
    ``dest``, and a failure leaves no partial file. ``kernel_copy``: the source is a local file that
    ``copy_file_range`` can copy (``_copy_hashing``); otherwise a stream (an fsspec object)."""
    tmp = partial_path(dest)
    try:
        with open(tmp, "w+b") as fout:
            copied = _copy_hashing(src, fout) if kernel_copy else _copy_hashing_userspace(src, fout)
        if copied.sha256 != sha256:
            raise _corrupt(label, sha256, copied.sha256)
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)


def _corrupt(label: str, sha256: str, actual: str) -> IntegrityError:
    return IntegrityError(
        f"{label}: stored blob sha256:{sha256} is corrupt (its bytes hash to {actual[:12]}...); "
        "run `fmstack hub fsck` to list every damaged file, and push the affected version again from a "
        "good copy (that rewrites the damaged blobs)"
    )


class LocalBlobStore:
    """Blobs in a local folder: ``sha256/ab/cdef...``; temp files in ``tmp/`` on the same filesystem."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._tmp = root / "tmp"  # created by the first write: a read-only store is still readable

    def _path(self, sha256: str) -> Path:
        return self.root / _rel(sha256)

    def put_file(self, src: Path) -> StoredBlob:
        self._tmp.mkdir(parents=True, exist_ok=True)
        tmp = self._tmp / f"{owner_tag()}-{uuid.uuid4().hex}.part"
        try:
            with open(src, "rb") as fin, open(tmp, "w+b") as fout:
                blob = _copy_hashing(fin, fout)
                fout.flush()
                os.fsync(fout.fileno())
            final = self._path(blob.sha256)
            # Replaced even when it exists: the new copy is verified, the stored one may have been
            # damaged since (pushing a version again is how `fsck`'s "corrupt" is repaired). A rename
            # costs nothing, and readers of the old file keep reading it.
            final.parent.mkdir(parents=True, exist_ok=True)
            existed = final.exists()
            os.replace(tmp, final)
            if not existed:  # a new name must reach the disk; an old one already has
                _fsync_dir(final.parent)
            return blob
        finally:
            tmp.unlink(missing_ok=True)

    def has(self, sha256: str) -> bool:
        return self._path(sha256).is_file()

    def read_to(self, sha256: str, dest: Path, label: str) -> None:
        with self._open(sha256, label) as fin:
            _write_verified(fin, dest, sha256, label, kernel_copy=True)

    def read_bytes(self, sha256: str, label: str) -> bytes:
        with self._open(sha256, label) as fin:
            data = fin.read()
        actual = hashlib.sha256(data).hexdigest()
        if actual != sha256:
            raise _corrupt(label, sha256, actual)
        return data

    def open(self, sha256: str, label: str) -> BinaryIO:
        """A seekable reader of the stored bytes, for streaming them (an HTTP range); NOT verified:
        a caller that needs the hash checked hashes what it reads."""
        return self._open(sha256, label)

    def _open(self, sha256: str, label: str) -> BinaryIO:
        try:
            return open(self._path(sha256), "rb")
        except FileNotFoundError:
            raise NotFound(
                f"{label}: blob sha256:{sha256} is missing from the store at {self.root}; "
                "run `fmstack hub fsck` and push the affected version again"
            ) from None

    def verify(self, sha256: str) -> bool:
        with open(self._path(sha256), "rb") as fin:
            return hashlib.file_digest(fin, "sha256").hexdigest() == sha256

    def list(self) -> Iterator[str]:
        base = self.root / "sha256"
        if not base.is_dir():
            return
        for sub in sorted(base.iterdir()):
            for blob in sorted(sub.iterdir()):
                yield sub.name + blob.name

    def size(self, sha256: str) -> int:
        return self._path(sha256).stat().st_size

    def delete(self, sha256: str) -> None:
        self._path(sha256).unlink(missing_ok=True)

    def leftovers(self) -> Leftovers:
        """Unfinished uploads in ``tmp/``; ``live`` when their pushing process may still be running."""
        if not self._tmp.is_dir():
            return []
        found = []
        for path in sorted(self._tmp.glob("*.part")):
            owner = parse_owner(path.name.removesuffix(".part").rpartition("-")[0])
            try:
                size = path.stat().st_size
            except FileNotFoundError:  # its push just finished
                continue
            found.append(
                Leftover(str(path), "unfinished upload", size, owner is not None and is_running(*owner))
            )
        return found

    def remove_leftover(self, left: Leftover) -> None:
        Path(left.path).unlink(missing_ok=True)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


# S3 (and S3-compatible servers): botocore's "standard" retry mode retries throttling (SlowDown, 503)
# and 5xx answers with exponential backoff and jitter, up to ``max_attempts`` tries per request; s3fs
# adds its own retries of dropped connections. Listings are never cached: another process (a second
# pusher, gc on another machine) may have changed the bucket since.
S3_OPTIONS: dict[str, Any] = {
    "config_kwargs": {
        "retries": {"mode": "standard", "max_attempts": 10},
        "connect_timeout": 10,
        "read_timeout": 120,
    },
    "use_listings_cache": False,
    # fsspec reuses one filesystem per set of options, but the endpoint and credentials come from the
    # environment: without this a store opened after AWS_ENDPOINT_URL changed would talk to the old
    # server (seen in the test suite: blobs pushed to one SeaweedFS, looked for in another).
    "skip_instance_cache": True,
}
# A blob larger than two parts goes up as a multipart upload of PART-sized parts, MAX_PARTS_AT_ONCE
# at a time, so an upload holds at most PART * MAX_PARTS_AT_ONCE bytes in memory (s3fs's default
# sends anything under 100 MB as one PUT read whole into memory).
PART = 16 * 1024 * 1024
MAX_PARTS_AT_ONCE = 4
# An unfinished multipart upload younger than this may belong to a push still running on some
# machine (S3 cannot say whose it is): fsck lists it as live and gc keeps it.
UPLOAD_GRACE_S = 24 * 3600


class FsspecBlobStore:
    """Blobs on any fsspec filesystem (S3 with the ``s3`` extra). The hash is computed locally before
    the upload, so a blob only ever appears under its name complete (object-store puts, multipart
    ones included, are atomic: the object exists only once the upload completes). Concurrent writers
    of one blob write the same bytes under the same name, so the last one to finish wins harmlessly.

    On S3 the endpoint and credentials come from the standard AWS configuration (``AWS_ENDPOINT_URL``,
    ``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``, ``~/.aws``), read by botocore itself."""

    def __init__(self, url: str, part_size: int = PART, block_size: int = CHUNK) -> None:
        import fsspec

        protocol = url.split("://", 1)[0]
        options = S3_OPTIONS if protocol in ("s3", "s3a") else {}
        try:
            self.fs: Any
            self.fs, root = fsspec.core.url_to_fs(url, **options)
        except (ImportError, ValueError) as exc:
            raise Unsupported(
                f"cannot open blob store {url!r}: {exc}. For s3:// URLs: pip install 'fmstack[s3]'"
            ) from None
        self.url = url
        self.root = str(root).rstrip("/")
        self.part_size = part_size
        self.block_size = block_size  # bytes per ranged GET when streaming a blob
        self._s3 = protocol in ("s3", "s3a")

    def _path(self, sha256: str) -> str:
        return f"{self.root}/{_rel(sha256)}"

    def put_file(self, src: Path) -> StoredBlob:
        with open(src, "rb") as fin:
            sha256 = hashlib.file_digest(fin, "sha256").hexdigest()
        blob = StoredBlob(sha256, src.stat().st_size)
        try:
            stored = int(self.fs.info(self._path(sha256))["size"])  # one round trip for both questions
        except FileNotFoundError:
            stored = -1
        if stored != blob.size:  # missing, or truncated since
            if self._s3:
                self.fs.put_file(
                    str(src), self._path(sha256), chunksize=self.part_size, max_concurrency=MAX_PARTS_AT_ONCE
                )
            else:
                self.fs.put_file(str(src), self._path(sha256))
        return blob

    def has(self, sha256: str) -> bool:
        return bool(self.fs.exists(self._path(sha256)))

    def read_to(self, sha256: str, dest: Path, label: str) -> None:
        """Stream the object into a temp file beside ``dest``, hashing as it goes (see
        ``_write_verified``)."""
        with self._open(sha256, label) as fin:
            _write_verified(fin, dest, sha256, label, kernel_copy=False)

    def open(self, sha256: str, label: str) -> BinaryIO:
        """A seekable reader of the stored object (not verified; see ``LocalBlobStore.open``)."""
        return self._open(sha256, label)

    def _open(self, sha256: str, label: str) -> BinaryIO:
        try:
            # Streaming: every read of the caller is one ranged GET, and no cache keeps earlier
            # blocks, so memory is bounded by the read (a few times block_size), not by the blob.
            return self.fs.open(  # type: ignore[no-any-return]
                self._path(sha256), "rb", block_size=self.block_size, cache_type="none"
            )
        except FileNotFoundError:
            raise NotFound(f"{label}: blob sha256:{sha256} is missing from {self.url}") from None

    def read_bytes(self, sha256: str, label: str) -> bytes:
        """The whole blob in memory: for small files (cards, configs) only; large ones stream."""
        try:
            data: bytes = self.fs.cat_file(self._path(sha256))
        except FileNotFoundError:
            raise NotFound(f"{label}: blob sha256:{sha256} is missing from {self.url}") from None
        actual = hashlib.sha256(data).hexdigest()
        if actual != sha256:
            raise _corrupt(label, sha256, actual)
        return data

    def verify(self, sha256: str) -> bool:
        """Hash the stored bytes as they stream in, ``block_size`` at a time: memory stays a few blocks
        whatever the blob's size."""
        digest = hashlib.sha256()
        with self._open(sha256, f"sha256:{sha256}") as fin:
            while chunk := fin.read(self.block_size):
                digest.update(chunk)
        return digest.hexdigest() == sha256

    def list(self) -> Iterator[str]:
        base = f"{self.root}/sha256"
        if not self.fs.exists(base):
            return
        for path in sorted(self.fs.find(base)):
            parts = str(path).rstrip("/").split("/")
            yield parts[-2] + parts[-1]

    def size(self, sha256: str) -> int:
        return int(self.fs.size(self._path(sha256)))

    def delete(self, sha256: str) -> None:
        if self.has(sha256):
            self.fs.rm_file(self._path(sha256))

    def leftovers(self) -> Leftovers:
        """Unfinished multipart uploads under this store (a push killed mid-upload leaves its parts,
        invisible but billed); ``live`` while younger than UPLOAD_GRACE_S. Other backends have none."""
        if not self._s3:
            return []
        bucket, _, prefix = self.root.partition("/")
        now = time.time()
        found = []
        for upload in self.fs.list_multipart_uploads(bucket):
            key = str(upload["Key"])
            if not key.startswith(f"{prefix}/sha256/" if prefix else "sha256/"):
                continue
            started = upload.get("Initiated")
            age = now - started.timestamp() if started is not None else UPLOAD_GRACE_S
            path = f"s3://{bucket}/{key}?uploadId={upload['UploadId']}"
            found.append(
                Leftover(
                    path, "unfinished upload", self._parts_size(bucket, key, upload), age < UPLOAD_GRACE_S
                )
            )
        return found

    def _parts_size(self, bucket: str, key: str, upload: dict[str, Any]) -> int:
        try:
            parts = self.fs.call_s3("list_parts", Bucket=bucket, Key=key, UploadId=upload["UploadId"])
        except Exception:  # the size is only informative; S3-compatible servers differ here
            return 0
        return sum(int(part.get("Size", 0)) for part in parts.get("Parts", []))

    def remove_leftover(self, left: Leftover) -> None:
        """Abort an unfinished multipart upload listed by ``leftovers``."""
        where, _, upload_id = left.path.partition("?uploadId=")
        bucket, _, key = where.removeprefix("s3://").partition("/")
        with contextlib.suppress(FileNotFoundError):  # completed or aborted since it was listed
            self.fs.call_s3("abort_multipart_upload", Bucket=bucket, Key=key, UploadId=upload_id)
