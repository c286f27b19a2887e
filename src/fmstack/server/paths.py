"""Turning URL path parameters into hub refs and version-relative file paths, refusing anything that
could name a place outside the hub: every part goes through the hub's own parsers, and storage keys
are minted by the server from verified sha256 digests, never from a user-supplied path."""

from __future__ import annotations

import re

from fmstack.errors import InvalidInput, clip
from fmstack.hub.manifest import check_relative_path
from fmstack.hub.refs import Ref, parse_ref, parse_repo

_SHA256_RE = re.compile(r"[0-9a-f]{64}")
# The largest id, version number, step or size the database holds (a signed 64-bit integer): a larger
# one must be refused as bad input, not reach the database and come back as an overflow (500).
LARGEST_NUMBER = 2**63 - 1


def repo_of(namespace: str, name: str) -> str:
    """``ns/name`` from two path parameters (each checked: no '/', '..', NUL or backslash).

    The hub's parser forgives whitespace around a whole ref (typed on a command line); a URL part is
    taken as it is, so ``%20acme`` is refused rather than quietly read as ``acme`` (the routes would
    otherwise hold two spellings of one namespace, and a listing by the raw one found nothing: 500)."""
    target = parse_repo(f"{namespace}/{name}")
    if (target.namespace, target.name) != (namespace, name):
        raise InvalidInput(
            f"bad repo name {clip(namespace)!r}/{clip(name)!r}: no spaces or control characters around its parts"
        )
    return target.repo


def ref_of(namespace: str, name: str, rev: str) -> str:
    """A hub ref from a revision: ``latest``, a version number, or an alias."""
    repo = repo_of(namespace, name)
    if rev == "latest":
        return repo
    return str(checked_ref(f"{repo}:{rev}" if rev.isdigit() else f"{repo}@{rev}"))


def checked_ref(text: str) -> Ref:
    """``parse_ref``, and a version number the database can hold."""
    try:
        ref = parse_ref(text)
    except ValueError as exc:  # a number of thousands of digits: Python refuses to convert it
        raise InvalidInput(f"bad ref {clip(text)!r}: version numbers end at {LARGEST_NUMBER}") from exc
    if ref.version is not None and ref.version > LARGEST_NUMBER:
        raise InvalidInput(f"bad ref {clip(text)!r}: version numbers end at {LARGEST_NUMBER}")
    return ref


def file_path(path: str) -> str:
    """A version-relative file path: relative, no '..', no backslash, no NUL or other control character."""
    if "\\" in path or any(ord(c) < 32 for c in path):
        raise InvalidInput(f"bad file path {clip(path)!r}: use '/' between parts and no control characters")
    return check_relative_path(path)


def sha256_of(text: str) -> str:
    if not _SHA256_RE.fullmatch(text):
        raise InvalidInput(f"bad sha256 {clip(text)!r}: expected 64 lowercase hex digits")
    return text
