"""Signed session cookies and CSRF tokens (server/dashboard/sessions.py)."""

from __future__ import annotations

import os
from pathlib import Path

from fmstack.server.dashboard.sessions import (
    SESSION_MAX_AGE_S,
    Session,
    csrf_ok,
    csrf_token,
    decode_session,
    encode_session,
    load_key,
)

KEY = b"k" * 32


def _flip(text: str) -> str:
    """``text`` with its last character changed."""
    return text[:-1] + ("B" if text[-1] != "B" else "C")


def test_a_session_round_trips_and_a_changed_byte_is_refused() -> None:
    session = Session("0123456789ab", "f" * 64, 1_000)
    cookie = encode_session(KEY, session)
    assert decode_session(KEY, cookie, now=1_000 + 60) == session
    payload, signature = cookie.split(".")
    forged = encode_session(b"x" * 32, Session("ba9876543210", "f" * 64, 1_000))
    for bad in (
        f"{_flip(payload)}.{signature}",
        f"{payload}.{_flip(signature)}",
        forged,
        "",
        "no-dot",
        f"{forged.split('.')[0]}.{signature}",
    ):
        assert decode_session(KEY, bad, now=1_060) is None, bad


def test_a_session_ends_after_its_maximum_age() -> None:
    cookie = encode_session(KEY, Session("0123456789ab", "f" * 64, 1_000))
    assert decode_session(KEY, cookie, now=1_000 + SESSION_MAX_AGE_S) is not None
    assert decode_session(KEY, cookie, now=1_000 + SESSION_MAX_AGE_S + 1) is None


def test_csrf_tokens_belong_to_their_nonce_and_key() -> None:
    token = csrf_token(KEY, "nonce-a")
    assert csrf_ok(KEY, "nonce-a", token)
    assert not csrf_ok(KEY, "nonce-b", token)
    assert not csrf_ok(b"y" * 32, "nonce-a", token)
    assert not csrf_ok(KEY, None, token)
    assert not csrf_ok(KEY, "nonce-a", None)
    assert not csrf_ok(KEY, "nonce-a", "")


def test_the_key_is_made_once_private_and_then_read(tmp_path: Path) -> None:
    first = load_key(tmp_path / "home")
    assert len(first) == 32
    assert load_key(tmp_path / "home") == first
    assert os.stat(tmp_path / "home" / "server-dashboard.key").st_mode & 0o777 == 0o600
