"""Federation client tokens: ``fmf_<prefix>_<secret>``, valid for one client of one federation and
for nothing else on the server (they are not account tokens: ``Accounts.authenticate`` never sees them).
Minted and hashed as account tokens are (``server.tokens``); only the hash is stored."""

from __future__ import annotations

import re

from fmstack.server import tokens

PREFIX = "fmf_"
_TOKEN_RE = re.compile(r"fmf_(?P<prefix>[0-9a-f]{12})_(?P<secret>[A-Za-z0-9_-]{43})")


def mint() -> tuple[str, str]:
    token, prefix = tokens.mint()
    return PREFIX + token.removeprefix(tokens.PREFIX), prefix


def prefix_of(token: str) -> str | None:
    match = _TOKEN_RE.fullmatch(token)
    return match["prefix"] if match else None


def is_federation_token(token: str) -> bool:
    return token.startswith(PREFIX)
