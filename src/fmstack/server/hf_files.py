"""Serving one stored file over HTTP: the ``Range`` header, and the bytes streamed from the blob
store in bounded chunks (a request holds at most ``STREAM_CHUNK`` bytes of a file in memory,
whatever the file's size).

A whole-file answer is hashed as it streams: if the stored bytes no longer match their sha256 the
stream stops short of its ``Content-Length``, so the client sees a broken download rather than
silently keeping a damaged file (the HTTP status was sent before the last byte was read, so it
cannot say so). A range answer is not hashed (the hash needs every byte); the client that resumes
checks the size of the file it assembles.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO

from fmstack.errors import IntegrityError

STREAM_CHUNK = 1024 * 1024
_RANGE_RE = re.compile(r"bytes=(\d*)-(\d*)")
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ByteRange:
    start: int
    end: int  # inclusive, as in Content-Range

    @property
    def length(self) -> int:
        return self.end - self.start + 1


class RangeNotSatisfiable(Exception):
    """A ``Range`` that starts past the end of the file (HTTP 416)."""


def parse_range(header: str | None, size: int) -> ByteRange | None:
    """The one byte range a ``Range`` header asks for, or None to send the whole file: no header,
    a form this server does not serve (several ranges, other units) or a range covering it all.
    Raises ``RangeNotSatisfiable`` for a range that starts at or past ``size``."""
    if header is None:
        return None
    match = _RANGE_RE.fullmatch(header.strip())
    if match is None or match[1] == match[2] == "":
        return None  # RFC 9110 lets a server ignore a Range it does not understand
    first, last = match[1], match[2]
    if first == "":  # "bytes=-N": the last N bytes
        start, end = max(size - int(last), 0), size - 1
    else:
        start = int(first)
        end = min(int(last), size - 1) if last else size - 1
        if last and int(last) < start:
            return None
    if start >= size or size == 0:
        raise RangeNotSatisfiable(f"bytes {start}- of a {size}-byte file")
    if start == 0 and end == size - 1:
        return None
    return ByteRange(start, end)


def stream(reader: BinaryIO, sha256: str, span: ByteRange | None, label: str) -> Iterator[bytes]:
    """The file's bytes (or the range's) in chunks of at most ``STREAM_CHUNK``; closes ``reader``.
    A whole file is hashed as it goes and the stream ends with ``IntegrityError`` on a mismatch."""
    try:
        if span is None:
            yield from _verified(reader, sha256, label)
        else:
            reader.seek(span.start)
            yield from _chunks(reader, span.length)
    finally:
        reader.close()


def _verified(reader: BinaryIO, sha256: str, label: str) -> Iterator[bytes]:
    """Every chunk but the last is sent as it is read; the last only once the whole file hashed
    right, so a damaged file never reaches the client complete."""
    digest = hashlib.sha256()
    held: bytes | None = None
    for chunk in _chunks(reader, None):
        digest.update(chunk)
        if held is not None:
            yield held
        held = chunk
    if digest.hexdigest() != sha256:
        log.error("%s: stored bytes do not match sha256:%s; run `fmstack hub fsck`", label, sha256)
        raise IntegrityError(f"{label}: stored blob sha256:{sha256} is corrupt; run `fmstack hub fsck`")
    if held is not None:
        yield held


def _chunks(reader: BinaryIO, remaining: int | None) -> Iterator[bytes]:
    while remaining is None or remaining > 0:
        want = STREAM_CHUNK if remaining is None else min(STREAM_CHUNK, remaining)
        chunk = reader.read(want)
        if not chunk:
            return
        if remaining is not None:
            remaining -= len(chunk)
        yield chunk
