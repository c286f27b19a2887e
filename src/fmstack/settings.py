"""Runtime settings: the one place that reads environment variables.

``FMSTACK_HOME`` (default ``~/.fmstack``) holds the SQLite database and the blob folder;
``FMSTACK_DATABASE_URL`` and ``FMSTACK_STORE_URL`` point metadata and blobs elsewhere;
``FMSTACK_HUB_URL`` (and ``FMSTACK_HUB_TOKEN``) name a remote hub server instead.
"""

from __future__ import annotations

import getpass
import os
from dataclasses import dataclass, field
from pathlib import Path


def _default_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry, e.g. in some containers
        return "unknown"


@dataclass(frozen=True)
class Settings:
    home: Path
    database_url: str
    store_url: str
    user: str = field(default_factory=_default_user)
    # A hub server to use instead of the local hub (FMSTACK_HUB_URL, or `fmstack --hub URL`); its
    # token comes from `fmstack login` (FMSTACK_HOME/credentials.json) or FMSTACK_HUB_TOKEN.
    hub_url: str | None = None
    hub_token: str | None = field(default=None, repr=False)

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> Settings:
        env = dict(os.environ if environ is None else environ)
        home = Path(env.get("FMSTACK_HOME") or Path.home() / ".fmstack").expanduser()
        return cls(
            home=home,
            database_url=env.get("FMSTACK_DATABASE_URL") or f"sqlite:///{home / 'fmstack.db'}",
            store_url=env.get("FMSTACK_STORE_URL") or str(home / "blobs"),
            user=env.get("FMSTACK_USER") or _default_user(),
            hub_url=env.get("FMSTACK_HUB_URL") or None,
            hub_token=env.get("FMSTACK_HUB_TOKEN") or None,
        )

    @classmethod
    def at(cls, home: Path) -> Settings:
        """Settings for a self-contained home folder (SQLite + local blobs), handy in tests."""
        return cls(home=home, database_url=f"sqlite:///{home / 'fmstack.db'}", store_url=str(home / "blobs"))
