"""Range parsing and verified streaming of one stored file (hf_files)."""

from __future__ import annotations

import hashlib
import io

import pytest

from fmstack.errors import IntegrityError
from fmstack.server import hf_files
from fmstack.server.hf_files import ByteRange, RangeNotSatisfiable, parse_range, stream


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, None),
        ("bytes=0-", None),  # the whole file: a plain 200
        ("bytes=0-99", None),
        ("bytes=10-", ByteRange(10, 99)),
        ("bytes=10-19", ByteRange(10, 19)),
        ("bytes=90-500", ByteRange(90, 99)),  # clipped to the end
        ("bytes=-5", ByteRange(95, 99)),  # the last 5 bytes
        ("bytes=0-1,5-9", None),  # several ranges: ignored, as RFC 9110 allows
        ("items=0-5", None),
        ("bytes=9-3", None),
    ],
)
def test_parse_range(header: str | None, expected: ByteRange | None) -> None:
    assert parse_range(header, 100) == expected


@pytest.mark.parametrize("header", ["bytes=100-", "bytes=500-600"])
def test_a_range_past_the_end_is_not_satisfiable(header: str) -> None:
    with pytest.raises(RangeNotSatisfiable):
        parse_range(header, 100)


def test_stream_sends_the_range_or_the_whole_file_in_bounded_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(hf_files, "STREAM_CHUNK", 4)
    data = bytes(range(10))
    sha = hashlib.sha256(data).hexdigest()
    chunks = list(stream(io.BytesIO(data), sha, None, "x"))
    assert b"".join(chunks) == data and max(map(len, chunks)) == 4
    assert b"".join(stream(io.BytesIO(data), sha, ByteRange(3, 8), "x")) == data[3:9]


def test_a_damaged_file_never_reaches_the_client_complete(monkeypatch: pytest.MonkeyPatch) -> None:
    """The last chunk is held back until the hash matched: a damaged blob's stream stops short."""
    monkeypatch.setattr(hf_files, "STREAM_CHUNK", 4)
    data = bytes(range(10))
    sent: list[bytes] = []
    with pytest.raises(IntegrityError, match="corrupt"):
        for chunk in stream(io.BytesIO(b"X" + data[1:]), hashlib.sha256(data).hexdigest(), None, "x"):
            sent.append(chunk)
    assert len(b"".join(sent)) < len(data)


def test_stream_closes_the_reader() -> None:
    reader = io.BytesIO(b"abc")
    list(stream(reader, hashlib.sha256(b"abc").hexdigest(), None, "x"))
    assert reader.closed
