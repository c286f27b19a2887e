"""API keys: who may use a server's inference routes.

With ``--api-key-file`` every request must carry ``Authorization: Bearer KEY`` (what the openai client
sends for ``api_key=``), except the open paths: health probes, ``/metrics`` and the API docs, which a
load balancer or Prometheus reads without a key and which tell nothing about the models. A missing or
unknown key is answered 401 in the route's error shape, with ``WWW-Authenticate: Bearer``.

``ApiKeys`` (an ASGI middleware) lets a request through when any ``KeyChecker`` accepts its key.
``KeyFile`` is the one checker today: one key per line, either the key itself or ``sha256:`` and the
hex digest of its UTF-8 bytes, so the file need hold no secret. Keys are compared as sha256 digests
with ``hmac.compare_digest``, against every entry, so the time taken says nothing about how close a
guess was. The file is stat'ed at most once a second (a stat costs more than the rest of a check)
and re-read when it changes (inode, size or mtime): editing or replacing it rotates keys without a
restart, within a second. What the file holds now is what is accepted:
a file that becomes empty or unreadable while serving refuses every key (and says so in the log).

The hub server's tokens (read scope on the served repos) will be a second ``KeyChecker``, added by
``key_checkers``. Keys never appear in a log line or an error message: only line numbers do.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import stat
import string
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Protocol

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from fmstack.errors import InvalidInput, Unauthorized
from fmstack.serve.settings import ServeSettings

log = logging.getLogger("fmstack.serve")

# Readable without a key: probes, Prometheus, and FastAPI's description of the API.
OPEN_PATHS = frozenset(
    {
        "/healthz",
        "/readyz",
        "/metrics",
        "/v2/health/live",
        "/v2/health/ready",
        "/docs",
        "/docs/oauth2-redirect",
        "/redoc",
        "/openapi.json",
    }
)
_DIGEST_PREFIX = "sha256:"
# How often the key file is looked at for changes: a stat on every request costs the event loop
# measurably (bench/README.md, API keys).
RECHECK_S = 1.0


class KeyChecker(Protocol):
    async def check(self, key: str) -> bool:
        """Whether ``key`` may use this server's inference routes."""
        ...


def key_checkers(settings: ServeSettings) -> list[KeyChecker]:
    """The checkers ``settings`` ask for; none means the server is open. Raises ``InvalidInput`` when
    the key file cannot be used, so a misconfigured server never starts.

    Hub tokens plug in here: a checker that asks the hub server whether a token has read scope on
    every served repo (``settings.models``), caching the answer for a short while."""
    if settings.api_key_file is None:
        return []
    return [KeyFile.open(settings.api_key_file)]


def parse_keys(text: str) -> tuple[list[bytes], list[str]]:
    """(sha256 digests of the keys, problems by line number) of a key file's text. Blank lines and
    lines starting with ``#`` are skipped; surrounding whitespace is not part of a key."""
    digests: list[bytes] = []
    problems: list[str] = []
    for number, line in enumerate(text.splitlines(), start=1):
        entry = line.strip()
        if not entry or entry.startswith("#"):
            continue
        if entry.startswith(_DIGEST_PREFIX):
            digest = entry[len(_DIGEST_PREFIX) :].strip().lower()
            if len(digest) != 64 or not set(digest) <= set(string.hexdigits):
                problems.append(f"line {number}: '{_DIGEST_PREFIX}' must be followed by 64 hex digits")
                continue
            digests.append(bytes.fromhex(digest))
        else:
            digests.append(_digest(entry))
    return digests, problems


def _digest(key: str) -> bytes:
    return hashlib.sha256(key.encode("utf-8")).digest()


class KeyFile:
    """The keys of ``--api-key-file``, re-read whenever the file changes."""

    def __init__(
        self,
        path: Path,
        digests: list[bytes],
        stamp: tuple[int, int, int] | None,
        recheck_s: float = RECHECK_S,
    ) -> None:
        self.path = path
        self._digests = digests
        self._stamp = stamp  # (inode, size, mtime) of the text the digests come from
        self._recheck_s = recheck_s
        self._next_check = time.monotonic() + recheck_s

    @classmethod
    def open(cls, path: Path, recheck_s: float = RECHECK_S) -> KeyFile:
        """Read ``path``; ``InvalidInput`` when it cannot be read, holds no key or has a malformed line."""
        try:
            info = path.stat()
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) else "it is not UTF-8 text"
            raise InvalidInput(f"cannot read --api-key-file {path}: {reason}") from None
        digests, problems = parse_keys(text)
        if problems:
            raise InvalidInput(f"--api-key-file {path}: {'; '.join(problems)}")
        if not digests:
            raise InvalidInput(
                f"--api-key-file {path} holds no keys: write one per line, the key itself or "
                f"'{_DIGEST_PREFIX}' and the hex sha256 of it"
            )
        _warn_if_exposed(path, info, text)
        log.info("API keys: %d read from %s", len(digests), path)
        return cls(path, digests, _stamp_of(info), recheck_s)

    async def check(self, key: str) -> bool:
        self._refresh()
        digest = _digest(key)
        found = False
        for known in self._digests:  # every entry, match or not: the time says nothing
            found |= hmac.compare_digest(known, digest)
        return found

    def _refresh(self) -> None:
        now = time.monotonic()
        if now < self._next_check:
            return
        self._next_check = now + self._recheck_s
        try:
            info = self.path.stat()
        except OSError as exc:
            self._replace([], None, f"cannot read it ({exc.strerror}); every key is refused until it is back")
            return
        stamp = _stamp_of(info)
        if stamp == self._stamp:
            return
        try:
            text = self.path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            self._replace([], stamp, "cannot read it; every key is refused until it is fixed")
            return
        digests, problems = parse_keys(text)
        for problem in problems:
            log.error("API keys: %s: %s (that line is skipped)", self.path, problem)
        if not digests:
            self._replace([], stamp, "it holds no keys now; every key is refused")
            return
        _warn_if_exposed(self.path, info, text)
        self._replace(digests, stamp, None)
        log.info("API keys: %s changed, %d keys now", self.path, len(digests))

    def _replace(self, digests: list[bytes], stamp: tuple[int, int, int] | None, error: str | None) -> None:
        if error is not None and (self._digests or stamp != self._stamp):  # log once per change
            log.error("API keys: %s: %s", self.path, error)
        self._digests, self._stamp = digests, stamp


def _stamp_of(info: os.stat_result) -> tuple[int, int, int]:
    return (info.st_ino, info.st_size, info.st_mtime_ns)


def _warn_if_exposed(path: Path, info: os.stat_result, text: str) -> None:
    plain = any(
        line.strip() and not line.strip().startswith(("#", _DIGEST_PREFIX)) for line in text.splitlines()
    )
    if plain and info.st_mode & (stat.S_IRGRP | stat.S_IROTH):
        log.warning(
            "API keys: %s holds keys in plain text and other users can read it: chmod 600 it, or "
            "store '%s' digests instead of the keys",
            path,
            _DIGEST_PREFIX,
        )


class ApiKeys:
    """Refuses a request to a path outside ``OPEN_PATHS`` unless a checker accepts its bearer key.

    Sits inside the metrics middleware (refusals are counted) and outside the inference routes, so no
    handler runs and no body is read for a refused request."""

    def __init__(
        self,
        app: ASGIApp,
        checkers: Sequence[KeyChecker],
        on_error: Callable[[Request, Unauthorized], Awaitable[Response]],
    ) -> None:
        self.app = app
        self.checkers = list(checkers)
        self.on_error = on_error

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in OPEN_PATHS:
            await self.app(scope, receive, send)
            return
        key = bearer_key(scope["headers"])
        if key is not None and await self._accepted(key):
            await self.app(scope, receive, send)
            return
        response = await self.on_error(Request(scope, receive), _refusal(key))
        response.headers["WWW-Authenticate"] = 'Bearer realm="fmstack"'
        await response(scope, receive, send)

    async def _accepted(self, key: str) -> bool:
        for checker in self.checkers:
            if await checker.check(key):
                return True
        return False


def bearer_key(headers: Sequence[tuple[bytes, bytes]]) -> str | None:
    """The key of an ``Authorization: Bearer KEY`` header (the scheme in any case); None without one."""
    for name, value in headers:
        if name == b"authorization":
            scheme, _, key = value.decode("latin-1").strip().partition(" ")
            key = key.strip()
            return key if scheme.lower() == "bearer" and key else None
    return None


def _refusal(key: str | None) -> Unauthorized:
    if key is None:
        return Unauthorized(
            "this server needs an API key: send the header 'Authorization: Bearer KEY' "
            "(openai client: api_key=KEY)"
        )
    return Unauthorized("the API key is not valid: check it, or ask the server's operator for one")
