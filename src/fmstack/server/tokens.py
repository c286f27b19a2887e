"""Access tokens, as text: minting, the public prefix they are looked up by, and the hash that is stored.

A token reads ``fmk_<prefix>_<secret>``: 12 hex characters of public prefix (shown by ``token ls`` and
in the audit log) and 32 random bytes of secret. Only ``sha256(token)`` is stored: the token has 256
bits of entropy, so a fast hash is as good as a slow one here, and lookups stay cheap. Pure functions;
nothing here touches the database.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from typing import Literal

Scope = Literal["read", "write", "admin"]
SCOPES: tuple[Scope, ...] = ("read", "write", "admin")
PREFIX = "fmk_"
_TOKEN_RE = re.compile(r"fmk_(?P<prefix>[0-9a-f]{12})_(?P<secret>[A-Za-z0-9_-]{43})")


def mint() -> tuple[str, str]:
    """A new token and its public prefix."""
    prefix = secrets.token_hex(6)
    return f"{PREFIX}{prefix}_{secrets.token_urlsafe(32)}", prefix


def prefix_of(token: str) -> str | None:
    """The public prefix of a well-formed token, or None for anything else."""
    match = _TOKEN_RE.fullmatch(token)
    return match["prefix"] if match else None


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def implied(scopes: list[Scope] | tuple[Scope, ...]) -> frozenset[Scope]:
    """Scopes are ordered: admin implies write, write implies read."""
    top = max((SCOPES.index(s) for s in scopes), default=0)
    return frozenset(SCOPES[: top + 1])
