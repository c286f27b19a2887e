"""Raw input files: expanding globs, recognising format and compression, mapping files to splits by
name, hashing them, and opening them as decompressed byte streams.

Knows nothing of columns or rows (that is ``readers.py``) nor of the hub.
"""

from __future__ import annotations

import codecs
import glob
import gzip
import hashlib
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Literal, cast

import zstandard

from fmstack.errors import InvalidInput, NotFound, clip

Format = Literal["csv", "tsv", "jsonl", "parquet", "text"]
Compression = Literal["gzip", "zstd"] | None

_FORMAT_SUFFIXES: dict[str, Format] = {
    ".csv": "csv",
    ".tsv": "tsv",
    ".tab": "tsv",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "jsonl",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".txt": "text",
    ".text": "text",
}
_COMPRESSION_SUFFIXES: dict[str, Compression] = {
    ".gz": "gzip",
    ".gzip": "gzip",
    ".zst": "zstd",
    ".zstd": "zstd",
}

# Split keywords as Hugging Face `datasets` recognises them in data file names: the keyword must stand
# alone between non-letters ("train.csv", "my-train-01.jsonl"), so "constrained.csv" is no match.
SPLIT_KEYWORDS: dict[str, tuple[str, ...]] = {
    "train": ("train", "training"),
    "validation": ("validation", "valid", "val", "dev"),
    "test": ("test", "testing", "eval", "evaluation"),
}
SPLIT_ALIASES = {alias: split for split, aliases in SPLIT_KEYWORDS.items() for alias in aliases}


@dataclass(frozen=True)
class Source:
    path: Path
    name: str  # relative to the common folder of all inputs: stable whatever the working directory
    format: Format
    compression: Compression
    split: str
    sha256: str
    size: int


def expand(patterns: Sequence[str]) -> list[Path]:
    """Files named by paths, folders (every file inside) or globs, sorted and without repeats."""
    found: list[Path] = []
    for pattern in patterns:
        matches = sorted(glob.glob(pattern, recursive=True)) if glob.has_magic(pattern) else [pattern]
        if not matches:
            raise NotFound(f"no file matches {clip(pattern)!r}; check the path or quote the glob")
        for match in matches:
            path = Path(match)
            if path.is_dir():
                found.extend(sorted(p for p in path.rglob("*") if p.is_file() and not p.name.startswith(".")))
            elif path.is_file():
                found.append(path)
            else:
                raise NotFound(f"no such file: {clip(match)!r}")
    unique = sorted({p.resolve(): p for p in found})
    if not unique:
        raise NotFound(f"no input files in {clip(', '.join(patterns))}")
    return unique


def detect(path: Path, forced: Format | None = None) -> tuple[Format, Compression]:
    suffixes = [s.lower() for s in path.suffixes]
    compression = _COMPRESSION_SUFFIXES.get(suffixes[-1]) if suffixes else None
    if compression:
        suffixes = suffixes[:-1]
    if forced is not None:
        fmt: Format | None = forced
    else:
        fmt = _FORMAT_SUFFIXES.get(suffixes[-1]) if suffixes else None
    if fmt is None:
        known = ", ".join(sorted(_FORMAT_SUFFIXES))
        raise InvalidInput(
            f"{clip(path)!r}: cannot tell the format from the name (known endings: {known}, "
            "optionally followed by .gz or .zst); pass --format csv|tsv|jsonl|parquet|text"
        )
    if fmt == "parquet" and compression:
        raise InvalidInput(f"{clip(path)!r}: Parquet compresses itself; store it without .gz/.zst")
    return fmt, compression


def split_from_name(path: Path) -> str | None:
    """The split a file belongs to by its name, or None when the name names none (or several)."""
    stem = path.name.lower()
    hits = set()
    for alias, split in SPLIT_ALIASES.items():
        if re.search(rf"(?<![a-z]){alias}(?![a-z])", stem):
            hits.add(split)
    return hits.pop() if len(hits) == 1 else None


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def open_binary(path: Path, compression: Compression) -> IO[bytes]:
    if compression == "gzip":
        return cast(IO[bytes], gzip.open(path, "rb"))
    if compression == "zstd":
        return cast(IO[bytes], zstandard.open(path, "rb"))
    return path.open("rb")


def check_split_name(name: str) -> str:
    name = SPLIT_ALIASES.get(name, name)
    if not re.fullmatch(r"[a-z][a-z0-9_]{0,31}", name) or name == "rejected":
        raise InvalidInput(
            f"bad split name {clip(name)!r}: use lower-case letters, digits and '_' (e.g. train, validation, "
            "test); 'rejected' is reserved for unusable rows"
        )
    return name


def find_bad_utf8(path: Path, compression: Compression) -> int | None:
    """The byte offset (in the decompressed stream) of the first invalid UTF-8 sequence, if any."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    offset = 0
    with open_binary(path, compression) as f:
        while chunk := f.read(1 << 20):
            pending = len(decoder.getstate()[0])  # bytes of a sequence split across chunks
            try:
                decoder.decode(chunk)
            except UnicodeDecodeError as exc:
                return offset - pending + exc.start
            offset += len(chunk)
        pending = len(decoder.getstate()[0])
        try:
            decoder.decode(b"", final=True)
        except UnicodeDecodeError as exc:
            return offset - pending + exc.start
    return None


def common_root(paths: Sequence[Path]) -> Path:
    resolved = [str(p.resolve().parent) for p in paths]
    return Path(os.path.commonpath(resolved))
