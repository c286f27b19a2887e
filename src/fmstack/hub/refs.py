"""Parsing of hub references: ``ns/name`` (latest), ``ns/name:3`` (version 3), ``ns/name@alias``.

The one parser for refs; everything that takes a ref from a user goes through ``parse_ref``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from fmstack.errors import InvalidInput

_NAME = r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}"
_ALIAS = r"[A-Za-z][A-Za-z0-9._-]{0,63}"
_NAME_RE = re.compile(_NAME)
_ALIAS_RE = re.compile(_ALIAS)
_REF_RE = re.compile(rf"(?P<ns>{_NAME})/(?P<name>{_NAME})(?::(?P<version>\d+)|@(?P<alias>{_ALIAS}))?")

REF_HELP = "expected NAMESPACE/NAME, NAMESPACE/NAME:VERSION or NAMESPACE/NAME@ALIAS (e.g. acme/intent:3)"


@dataclass(frozen=True)
class Ref:
    namespace: str
    name: str
    version: int | None = None
    alias: str | None = None

    @property
    def repo(self) -> str:
        return f"{self.namespace}/{self.name}"

    def __str__(self) -> str:
        if self.version is not None:
            return f"{self.repo}:{self.version}"
        if self.alias is not None:
            return f"{self.repo}@{self.alias}"
        return self.repo


def parse_ref(text: str) -> Ref:
    """Parse a ref; raise ``InvalidInput`` naming the text and the accepted forms."""
    match = _match(text)
    if match is None:
        raise InvalidInput(f"bad ref {text!r}: {REF_HELP}")
    version = match["version"]
    if version is not None and int(version) < 1:
        raise InvalidInput(f"bad ref {text!r}: versions start at 1")
    return Ref(match["ns"], match["name"], int(version) if version is not None else None, match["alias"])


def _match(text: str) -> re.Match[str] | None:
    match = _REF_RE.fullmatch(text.strip())
    if match is None or match["name"] in {".", ".."} or match["ns"] in {".", ".."}:
        return None
    return match


def parse_repo(text: str) -> Ref:
    """Parse a plain ``ns/name`` (no version, no alias), e.g. the target of a push."""
    if _match(text) is None:
        raise InvalidInput(
            f"bad repo name {text!r}: expected NAMESPACE/NAME (e.g. acme/intent), each part starting "
            "with a letter or digit, then letters, digits, '.', '_' or '-'"
        )
    ref = parse_ref(text)
    if ref.version is not None or ref.alias is not None:
        raise InvalidInput(f"bad repo name {text!r}: expected NAMESPACE/NAME without :VERSION or @ALIAS")
    return ref


def check_alias(alias: str) -> str:
    if not _ALIAS_RE.fullmatch(alias):
        raise InvalidInput(
            f"bad alias {alias!r}: an alias starts with a letter and has letters, digits, '.', '_' or '-'"
        )
    if alias == "latest":
        raise InvalidInput("'latest' is reserved: NAMESPACE/NAME without an alias already means the latest")
    return alias
