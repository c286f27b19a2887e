"""The dashboard's login session and CSRF tokens: signed cookies, no table.

A session cookie holds the public prefix of the token the visitor logged in with, the sha256 of that
token (which the server stores anyway) and the time of login, signed with HMAC-SHA256 under the
server's dashboard key. Each request looks the token up again (``Accounts.authenticate_digest``), so
revoking the token, its expiry or a change of the user's roles ends or changes the session at once;
the signature stops anyone from forging a cookie from a token's prefix.

CSRF: every page carries a random nonce in its own cookie (``fmstack_csrf``); each form carries
``HMAC(key, nonce)``, and a POST is refused unless the two agree. A page of another site can neither
read the cookie nor compute the HMAC.

The key is 32 random bytes in ``<FMSTACK_HOME>/server-dashboard.key`` (mode 0600), made once; every
worker process of one server reads the same file, so a cookie signed by one is good at all. Hand-rolled
rather than ``itsdangerous`` (not a dependency here): the whole of it is ``hmac.compare_digest`` over a
base64 payload.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
import time
from dataclasses import dataclass
from pathlib import Path

SESSION_COOKIE = "fmstack_session"
CSRF_COOKIE = "fmstack_csrf"
SESSION_MAX_AGE_S = 12 * 3600
KEY_FILE = "server-dashboard.key"


@dataclass(frozen=True)
class Session:
    prefix: str  # public prefix of the token logged in with
    token_sha256: str
    issued_at: int  # unix seconds


def load_key(home: Path) -> bytes:
    """The dashboard's signing key, made on first use. ``O_EXCL`` makes the first of several worker
    processes starting at once the one that writes it; the others read what it wrote."""
    path = home / KEY_FILE
    home.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return _read_key(path)
    key = secrets.token_bytes(32)
    with os.fdopen(fd, "wb") as out:
        out.write(key.hex().encode())
    return key


def _read_key(path: Path) -> bytes:
    for _ in range(50):  # another worker made the file and may not have written it yet
        text = path.read_text().strip()
        if len(text) == 64:
            return bytes.fromhex(text)
        time.sleep(0.02)
    raise OSError(f"{path} does not hold a dashboard key (64 hex characters): remove it and restart")


def _sign(key: bytes, purpose: str, payload: str) -> str:
    return hmac.new(key, f"{purpose}:{payload}".encode(), hashlib.sha256).hexdigest()


def encode_session(key: bytes, session: Session) -> str:
    body = json.dumps([session.prefix, session.token_sha256, session.issued_at], separators=(",", ":"))
    payload = base64.urlsafe_b64encode(body.encode()).decode().rstrip("=")
    return f"{payload}.{_sign(key, 'session', payload)}"


def decode_session(key: bytes, cookie: str, now: float | None = None) -> Session | None:
    """The session a cookie holds, or None when it is forged, malformed or older than the maximum age."""
    payload, _, signature = cookie.partition(".")
    if not hmac.compare_digest(signature, _sign(key, "session", payload)):
        return None
    try:
        prefix, sha, issued = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (ValueError, TypeError):
        return None
    if not (isinstance(prefix, str) and isinstance(sha, str) and isinstance(issued, int)):
        return None
    if (now if now is not None else time.time()) - issued > SESSION_MAX_AGE_S:
        return None
    return Session(prefix, sha, issued)


def new_nonce() -> str:
    return secrets.token_urlsafe(24)


def csrf_token(key: bytes, nonce: str) -> str:
    return _sign(key, "csrf", nonce)


def csrf_ok(key: bytes, nonce: str | None, token: str | None) -> bool:
    if not nonce or not token:
        return False
    return hmac.compare_digest(token, csrf_token(key, nonce))
