"""KServe v2's binary tensor data extension: tensor bytes carried after the JSON of a request or response.

Such a body is a JSON header followed by the raw bytes of some of its tensors. The HTTP header
``Inference-Header-Content-Length`` says where the JSON ends; each binary tensor's
``parameters.binary_data_size`` says how many of the following bytes are its own, in the order the
tensors are listed. Numbers are little-endian and row-major; a ``BYTES`` tensor is each element as a
4-byte little-endian length followed by that many bytes (what ``tritonclient`` writes and reads).

This module only converts bytes; which tensors a model takes and answers is ``routers.kserve``'s.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Sequence

import numpy as np
from numpy.typing import NDArray

from fmstack.errors import InvalidInput

HEADER = "inference-header-content-length"
_LENGTH = struct.Struct("<I")


def split_body(body: bytes, header_length: str) -> tuple[bytes, bytes]:
    """(JSON header, binary part) of a request body cut where ``Inference-Header-Content-Length`` says."""
    if not header_length.strip().isdigit():
        raise InvalidInput(f"Inference-Header-Content-Length {header_length!r} is not a byte count")
    length = int(header_length)
    if length > len(body):
        raise InvalidInput(
            f"Inference-Header-Content-Length {length} is longer than the {len(body)}-byte request body"
        )
    return body[:length], body[length:]


def binary_parts(sizes: Sequence[tuple[str, int | None]], binary: bytes) -> dict[str, bytes]:
    """Each binary tensor's bytes, by name: ``sizes`` lists every tensor with its ``binary_data_size``
    (None: its data is in the JSON), in request order. The sizes must add up to the binary part."""
    declared = sum(size for _, size in sizes if size is not None)
    if declared != len(binary):
        raise InvalidInput(
            f"the input tensors declare {declared} bytes of binary data (binary_data_size) but "
            f"{len(binary)} bytes follow the JSON header (Inference-Header-Content-Length)"
        )
    parts: dict[str, bytes] = {}
    offset = 0
    for name, size in sizes:
        if size is not None:
            parts[name] = binary[offset : offset + size]
            offset += size
    return parts


def decode_bytes(name: str, raw: bytes) -> list[bytes]:
    """The elements of a binary ``BYTES`` tensor, in order."""
    elements: list[bytes] = []
    offset = 0
    while offset < len(raw):
        if offset + 4 > len(raw):
            raise InvalidInput(f"input {name!r}: binary BYTES data ends inside an element's 4-byte length")
        (length,) = _LENGTH.unpack_from(raw, offset)
        offset += 4
        if offset + length > len(raw):
            raise InvalidInput(
                f"input {name!r}: element {len(elements)} says {length} bytes, "
                f"only {len(raw) - offset} are left in its binary data"
            )
        elements.append(raw[offset : offset + length])
        offset += length
    return elements


def encode_bytes(elements: Iterable[bytes]) -> bytes:
    """A ``BYTES`` tensor's binary form: each element's 4-byte little-endian length, then the element."""
    return b"".join(_LENGTH.pack(len(e)) + e for e in elements)


def encode_fp32(values: NDArray[np.float32]) -> bytes:
    """An ``FP32`` tensor's binary form: little-endian float32, row-major."""
    return np.ascontiguousarray(values, dtype="<f4").tobytes()
