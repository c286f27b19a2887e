"""Runtime settings: the one place that reads environment variables.

``FMSTACK_HOME`` (default ``~/.fmstack``) holds the SQLite database and the blob folder;
``FMSTACK_DATABASE_URL`` and ``FMSTACK_STORE_URL`` point metadata and blobs elsewhere.
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

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> Settings:
        env = dict(os.environ if environ is None else environ)
        home = Path(env.get("FMSTACK_HOME") or Path.home() / ".fmstack").expanduser()
        return cls(
            home=home,
            database_url=env.get("FMSTACK_DATABASE_URL") or f"sqlite:///{home / 'fmstack.db'}",
            store_url=env.get("FMSTACK_STORE_URL") or str(home / "blobs"),
            user=env.get("FMSTACK_USER") or _default_user(),
        )

    @classmethod
    def at(cls, home: Path) -> Settings:
        """Settings for a self-contained home folder (SQLite + local blobs), handy in tests."""
        return cls(home=home, database_url=f"sqlite:///{home / 'fmstack.db'}", store_url=str(home / "blobs"))
