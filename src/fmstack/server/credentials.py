"""The token ``fmstack login`` stores: ``FMSTACK_HOME/credentials.json``, mode 0600, one server URL and
its token. ``FMSTACK_HUB_TOKEN`` overrides it (CI jobs), and is used for any URL."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from fmstack.errors import InvalidInput, Unauthorized
from fmstack.settings import Settings

FILE = "credentials.json"


@dataclass(frozen=True)
class Credentials:
    url: str
    token: str


def normalise_url(url: str) -> str:
    url = url.strip().rstrip("/")
    if not url.startswith(("http://", "https://")):
        raise InvalidInput(f"bad hub URL {url!r}: expected http://HOST[:PORT] or https://HOST[:PORT]")
    return url


def save(home: Path, credentials: Credentials) -> Path:
    """Write atomically, readable by this user only (the file is created 0600, never wider)."""
    home.mkdir(parents=True, exist_ok=True)
    path, tmp = home / FILE, home / f".{FILE}.tmp"
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as out:
        json.dump({"url": credentials.url, "token": credentials.token}, out)
    os.replace(tmp, path)
    return path


def load(home: Path) -> Credentials | None:
    try:
        data = json.loads((home / FILE).read_text())
        return Credentials(str(data["url"]), str(data["token"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def remove(home: Path) -> bool:
    path = home / FILE
    existed = path.exists()
    path.unlink(missing_ok=True)
    return existed


def remote(settings: Settings) -> Credentials | None:
    """The hub server commands use instead of the local hub: FMSTACK_HUB_URL (or ``--hub URL``), with
    FMSTACK_HUB_TOKEN or the token ``fmstack login`` stored for that URL; None for the local hub.
    A URL without a token is used anonymously (public repos only). Logging in alone selects nothing."""
    if settings.hub_url is None:
        return None
    url = normalise_url(settings.hub_url)
    stored = load(settings.home)
    token = settings.hub_token or (stored.token if stored is not None and stored.url == url else "")
    return Credentials(url, token)


def logged_in(settings: Settings) -> Credentials:
    """The server ``whoami`` asks: the selected one, else the one logged in to."""
    selected = remote(settings)
    if selected is not None:
        return selected
    stored = load(settings.home)
    if stored is None:
        raise Unauthorized("not logged in to a hub server: run `fmstack login URL` or pass --hub URL")
    return Credentials(stored.url, settings.hub_token or stored.token)
