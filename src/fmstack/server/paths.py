"""Turning URL path parameters into hub refs and version-relative file paths, refusing anything that
could name a place outside the hub: every part goes through the hub's own parsers, and storage keys
are minted by the server from verified sha256 digests, never from a user-supplied path."""

from __future__ import annotations

import re

from fmstack.errors import InvalidInput, clip
from fmstack.hub.manifest import check_relative_path
from fmstack.hub.refs import parse_ref, parse_repo

_SHA256_RE = re.compile(r"[0-9a-f]{64}")


def repo_of(namespace: str, name: str) -> str:
    """``ns/name`` from two path parameters (each checked: no '/', '..', NUL or backslash)."""
    return parse_repo(f"{namespace}/{name}").repo


def ref_of(namespace: str, name: str, rev: str) -> str:
    """A hub ref from a revision: ``latest``, a version number, or an alias."""
    repo = repo_of(namespace, name)
    if rev == "latest":
        return repo
    return str(parse_ref(f"{repo}:{rev}" if rev.isdigit() else f"{repo}@{rev}"))


def file_path(path: str) -> str:
    """A version-relative file path: relative, no '..', no backslash, no NUL or other control character."""
    if "\\" in path or any(ord(c) < 32 for c in path):
        raise InvalidInput(f"bad file path {clip(path)!r}: use '/' between parts and no control characters")
    return check_relative_path(path)


def sha256_of(text: str) -> str:
    if not _SHA256_RE.fullmatch(text):
        raise InvalidInput(f"bad sha256 {clip(text)!r}: expected 64 lowercase hex digits")
    return text
