"""The hub: repos of immutable versions, aliases and cards, over a SQL database and a blob store.

``Hub`` is the Python API (``fmstack.hub.Hub``) and the local implementation of ``fmstack.hub.api.HubApi``;
the CLI is a thin layer over it. It opens the database and the blob store, and hands each
responsibility to the store module that owns it; its methods only delegate:

- ``hub.catalog`` (``versions.VersionStore``): versions, their files, resolve / info / ls / rm, lineage,
  repo visibility;
- ``hub.transfers`` (``transfer.Transfers``): push, pull, checkout, read_file (blobs, then metadata);
- ``hub.aliases`` (``aliases.AliasStore``): tag, untag, the alias log;
- ``hub.cards`` (``cards.CardStore``): a version's card;
- ``hub.runs`` (``runs.RunLog``): records of work, metrics, logs.

``maintenance`` (fsck, gc) works through ``catalog``, ``blobs`` and ``runs``. No SQL outside those modules.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path

import sqlalchemy.exc
from sqlalchemy import Engine
from sqlalchemy.engine import make_url

from fmstack.errors import FmstackError, Unavailable
from fmstack.hub.aliases import AliasStore
from fmstack.hub.api import HubApi
from fmstack.hub.blobs import BlobStore, open_blob_store
from fmstack.hub.cards import CardStore
from fmstack.hub.db import HUB_MIGRATIONS, create_hub_engine
from fmstack.hub.entities import AliasEvent, Kind, Lineage, RepoInfo, VersionDetail, VersionInfo
from fmstack.hub.gc_lock import GcLock
from fmstack.hub.runs import RunLog
from fmstack.hub.transactions import Transactions
from fmstack.hub.transfer import Transfers
from fmstack.hub.versions import VersionStore
from fmstack.settings import Settings


class Hub:
    """Open with ``Hub.open()`` (settings from the environment) or ``Hub(Settings.at(path))``."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.engine = _open_database(settings)
        self._db = Transactions(self.engine, settings.home)
        try:
            self.blobs: BlobStore = open_blob_store(settings.store_url)
            self.gc_lock = GcLock(settings.home / ".gc.lock")
        except OSError as exc:
            self.engine.dispose()
            raise _unusable_folder(exc, settings.home) from None
        self.runs = RunLog(self._db, settings.user)
        self.catalog = VersionStore(self._db, settings.user)
        self.aliases = AliasStore(self._db, settings.user)
        self.cards = CardStore(self._db)
        self.transfers = Transfers(
            self._db, self.catalog, self.blobs, self.gc_lock, settings.home, settings.store_url
        )

    @classmethod
    def open(cls, settings: Settings | None = None) -> Hub:
        return cls(settings or Settings.from_env())

    def close(self) -> None:
        self.engine.dispose()

    @property
    def read_only(self) -> bool:
        """Opened on a database this user cannot write (a read-only FMSTACK_HOME): reads work."""
        return self._db.read_only

    def check_writable(self, doing: str) -> None:
        """Refuse ``doing`` up front on a read-only hub, before any work or bytes are copied."""
        self._db.check_writable(doing)

    def __enter__(self) -> Hub:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- push and pull (transfer.py) ---------------------------------------------------------------

    def push(
        self,
        repo: str,
        path: Path | str,
        kind: Kind,
        *,
        message: str = "",
        alias: str | None = None,
        card: str | None = None,
        run_id: int | None = None,
        progress: Callable[[int], None] | None = None,
    ) -> VersionInfo:
        """Store a folder (or one file) as a new version of ``repo``. Content identical to the latest
        version returns that version. ``progress`` is called with byte counts as files are stored."""
        return self.transfers.push(
            repo, path, kind, message=message, alias=alias, card=card, run_id=run_id, progress=progress
        )

    def pull(self, ref: str, dest: Path | str, progress: Callable[[int], None] | None = None) -> VersionInfo:
        """Write a version's files under ``dest``, verifying every hash (see ``Transfers.pull``)."""
        return self.transfers.pull(ref, dest, progress)

    def checkout(self, ref: str) -> Path:
        """A verified, read-only local copy of a version's files, cached by content digest."""
        return self.transfers.checkout(ref)

    def read_file(self, ref: str, path: str) -> bytes:
        """The verified bytes of one file of a version (for small files: configs, label maps)."""
        return self.transfers.read_file(ref, path)

    # -- versions (versions.py) --------------------------------------------------------------------

    def check_repo_kind(self, repo: str, kind: Kind) -> None:
        """Raise ``Conflict`` when ``repo`` exists and holds another kind: callers that do work before
        they push (ingest, process, train, compress) check first, so the work is not done in vain."""
        self.catalog.check_repo_kind(repo, kind)

    def resolve(self, ref: str) -> VersionInfo:
        return self.catalog.resolve(ref)

    def info(self, ref: str) -> VersionDetail:
        return self.catalog.info(ref)

    def ls(self, kind: Kind | None = None, namespace: str | None = None) -> list[RepoInfo]:
        return self.catalog.ls(kind, namespace)

    def versions(self, repo: str) -> list[VersionInfo]:
        return self.catalog.versions(repo)

    def lineage(self, ref: str) -> Lineage:
        return self.catalog.lineage(ref)

    def rm(self, ref: str, *, force: bool = False) -> list[VersionInfo]:
        """Remove one version (``ns/name:N`` or ``ns/name@alias``) or a whole repo (``ns/name``).
        Refused while an alias points at it or a downstream version depends on it, unless ``force``.
        Blobs stay until ``gc``: other versions may share them."""
        return self.catalog.rm(ref, force=force)

    # -- aliases (aliases.py) and cards (cards.py) -------------------------------------------------

    def tag(self, ref: str, alias: str) -> VersionInfo:
        """Point ``alias`` of the ref's repo at the ref's version; the move is logged."""
        return self.aliases.tag(ref, alias)

    def untag(self, repo: str, alias: str) -> None:
        self.aliases.untag(repo, alias)

    def alias_history(self, repo: str) -> list[AliasEvent]:
        return self.aliases.history(repo)

    def card(self, ref: str) -> str:
        return self.cards.get(ref)

    def set_card(self, ref: str, text: str) -> VersionInfo:
        """Replace a version's card (metadata, not content: the version's digest does not change)."""
        return self.cards.set(ref, text)


# mypy checks here that the local hub implements everything callers may use of a hub.
_LOCAL_HUB: Callable[[Settings], HubApi] = Hub


def _open_database(settings: Settings) -> Engine:
    """The hub's engine with its schema current; a folder or database that cannot be used is the
    user's to fix (``Unavailable``), not a bug."""
    engine: Engine | None = None
    try:
        engine = create_hub_engine(settings.database_url)
        HUB_MIGRATIONS.migrate(engine, settings.home if engine.dialect.name == "sqlite" else None)
        return engine
    except OSError as exc:  # FMSTACK_HOME is a file, or not writable, or on a missing mount
        problem: FmstackError = _unusable_folder(exc, settings.home)
    except (sqlite3.Error, sqlalchemy.exc.DatabaseError) as exc:
        url = make_url(settings.database_url)
        reason = " ".join(str(getattr(exc, "orig", None) or exc).split())
        way_out = (
            "move the file aside or point FMSTACK_HOME / FMSTACK_DATABASE_URL elsewhere"
            if url.get_backend_name() == "sqlite"
            else "check FMSTACK_DATABASE_URL and that its server is running"
        )
        problem = Unavailable(
            f"cannot open the hub database {url.render_as_string(hide_password=True)}: {reason}; {way_out}"
        )
    if engine is not None:
        engine.dispose()
    raise problem


def _unusable_folder(exc: OSError, home: Path) -> Unavailable:
    where = exc.filename or home
    return Unavailable(
        f"cannot use {where} for the hub: {exc.strerror or exc}; set FMSTACK_HOME to a folder you can write to"
    )
