"""The hub: repos of immutable versions, aliases and cards, over a SQL database and a blob store.

``Hub`` is the Python API (``fmstack.hub.Hub``); the CLI is a thin layer over it. Blobs are always
written before the metadata that names them, in one transaction per version, so a crash at any point
leaves at most orphan blobs, never a visible partial version.
"""

from __future__ import annotations

import hashlib
import sqlite3
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, suppress
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

import sqlalchemy.exc
from sqlalchemy import Engine, delete, func, select
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from fmstack.errors import Conflict, FmstackError, InvalidInput, NotFound, Unavailable
from fmstack.hub import checkouts
from fmstack.hub import lineage as lineage_mod
from fmstack.hub.blobs import BlobStore, open_blob_store, stale_partials
from fmstack.hub.cards import parse_card
from fmstack.hub.db import create_hub_engine, is_read_only, migrate, session_factory
from fmstack.hub.entities import (
    KINDS,
    AliasEvent,
    FileInfo,
    Kind,
    Lineage,
    RepoInfo,
    VersionDetail,
    VersionInfo,
    a_kind,
)
from fmstack.hub.gc_lock import GcLock
from fmstack.hub.manifest import ManifestEntry, check_relative_path, collect_files, manifest_digest
from fmstack.hub.refs import Ref, check_alias, parse_ref, parse_repo
from fmstack.hub.resolve import repo_row, version_row
from fmstack.hub.runs import RunLog
from fmstack.hub.schema import (
    AliasEventRow,
    AliasRow,
    FileRow,
    NamespaceRow,
    RepoRow,
    RunInputRow,
    VersionRow,
)
from fmstack.hub.scratch import remove_tree, scratch_dir
from fmstack.hub.writes import store_way_out, write_error
from fmstack.settings import Settings

T = TypeVar("T")
_WORKERS = 4  # blob hashing/copying threads; hashlib and file I/O release the GIL


def now() -> datetime:
    return datetime.now(UTC)


def version_info(row: VersionRow) -> VersionInfo:
    repo = row.repo
    return VersionInfo(
        repo=f"{repo.namespace.name}/{repo.name}",
        kind=repo.kind,  # type: ignore[arg-type]
        number=row.number,
        digest=row.digest,
        message=row.message,
        creator=row.creator,
        created_at=row.created_at,
        total_size=row.total_size,
        file_count=row.file_count,
        run_id=row.run_id,
    )


class Hub:
    """Open with ``Hub.open()`` (settings from the environment) or ``Hub(Settings.at(path))``."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.engine = _open_database(settings)
        self._sessions = session_factory(self.engine)
        try:
            self.blobs: BlobStore = open_blob_store(settings.store_url)
            self.gc_lock = GcLock(settings.home / ".gc.lock")
        except OSError as exc:
            self.engine.dispose()
            raise _unusable_folder(exc, settings.home) from None
        self.runs = RunLog(self._sessions, settings.user)

    @classmethod
    def open(cls, settings: Settings | None = None) -> Hub:
        return cls(settings or Settings.from_env())

    def close(self) -> None:
        self.engine.dispose()

    @property
    def read_only(self) -> bool:
        """Opened on a database this user cannot write (a read-only FMSTACK_HOME): reads work."""
        return is_read_only(self.engine)

    def check_writable(self, doing: str) -> None:
        """Refuse ``doing`` up front on a read-only hub, before any work or bytes are copied."""
        if self.read_only:
            raise Unavailable(
                f"FMSTACK_HOME is read-only: {self.settings.home} cannot be written (a read-only "
                f"mount, or a folder of another user), so it cannot {doing}; reading works. Use a "
                "writable FMSTACK_HOME for commands that change the hub"
            )

    def __enter__(self) -> Hub:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- transactions ------------------------------------------------------------------------------

    def _write(self, fn: Callable[[Session], T]) -> T:
        """Run ``fn`` in one write transaction; retry when a concurrent writer won a unique-key race
        (two processes creating the same repo or version number on PostgreSQL)."""
        self.check_writable("record this change")
        for attempt in range(8):
            try:
                with self._sessions.begin() as session:
                    return fn(session)
            except sqlalchemy.exc.IntegrityError:
                if attempt == 7:
                    raise
        raise AssertionError("unreachable")

    def _read(self, fn: Callable[[Session], T]) -> T:
        with self._sessions() as session:
            return fn(session)

    # -- push and pull -----------------------------------------------------------------------------

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
        target = parse_repo(repo)
        if kind not in KINDS:
            raise InvalidInput(f"bad kind {kind!r}: use one of {', '.join(KINDS)}")
        if alias is not None:
            check_alias(alias)
        if card is not None:
            parse_card(card)
        self.check_writable(f"store a new version of {target.repo}")
        self.check_repo_kind(repo, kind)  # before copying any bytes; the commit checks again
        files = collect_files(Path(path))
        try:
            with self.gc_lock.shared():
                entries = self._store_blobs(files, progress)
                digest = manifest_digest(entries)
                return self._write(
                    lambda s: self._commit_version(
                        s, target, kind, entries, digest, message, alias, card, run_id
                    )
                )
        except OSError as exc:  # the lock file, a blob: a full disk, a read-only folder, a size limit
            raise write_error(exc, self.settings.store_url, store_way_out()) or exc from None

    def _store_blobs(
        self, files: list[tuple[str, Path]], progress: Callable[[int], None] | None
    ) -> list[ManifestEntry]:
        def store(item: tuple[str, Path]) -> ManifestEntry:
            blob = self.blobs.put_file(item[1])
            if progress is not None:
                progress(blob.size)
            return ManifestEntry(item[0], blob.sha256, blob.size)

        with ThreadPoolExecutor(_WORKERS) as pool:
            return list(pool.map(store, files))

    def _commit_version(
        self,
        session: Session,
        target: Ref,
        kind: Kind,
        entries: list[ManifestEntry],
        digest: str,
        message: str,
        alias: str | None,
        card: str | None,
        run_id: int | None,
    ) -> VersionInfo:
        repo = self._get_or_create_repo(session, target, kind)
        latest = session.scalars(
            select(VersionRow)
            .where(VersionRow.repo_id == repo.id)
            .order_by(VersionRow.number.desc())
            .limit(1)
        ).first()
        if latest is not None and latest.digest == digest:
            row = latest
        else:
            row = VersionRow(
                repo=repo,
                number=(latest.number if latest else 0) + 1,
                digest=digest,
                message=message,
                creator=self.settings.user,
                created_at=now(),
                total_size=sum(e.size for e in entries),
                file_count=len(entries),
                card=card if card is not None else (latest.card if latest else ""),
                run_id=run_id,
            )
            session.add(row)
            session.flush()
            session.add_all(
                FileRow(version_id=row.id, path=e.path, sha256=e.sha256, size=e.size) for e in entries
            )
        if card is not None and row.card != card:
            row.card = card
        if alias is not None:
            self._move_alias(session, repo, alias, row)
        return version_info(row)

    def _get_or_create_repo(self, session: Session, target: Ref, kind: Kind) -> RepoRow:
        namespace = session.scalars(select(NamespaceRow).where(NamespaceRow.name == target.namespace)).first()
        if namespace is None:
            namespace = NamespaceRow(name=target.namespace, created_at=now())
            session.add(namespace)
            session.flush()
        # FOR UPDATE serialises version numbering per repo on PostgreSQL; SQLite's BEGIN IMMEDIATE
        # already serialises every writer.
        repo = session.scalars(
            select(RepoRow)
            .where(RepoRow.namespace_id == namespace.id, RepoRow.name == target.name)
            .with_for_update()
        ).first()
        if repo is None:
            repo = RepoRow(namespace=namespace, name=target.name, kind=kind, created_at=now())
            session.add(repo)
            session.flush()
        elif repo.kind != kind:
            raise _kind_conflict(target.repo, repo.kind, kind)
        return repo

    def check_repo_kind(self, repo: str, kind: Kind) -> None:
        """Raise ``Conflict`` when ``repo`` exists and holds another kind: callers that do work before
        they push (ingest, process, train, compress) check first, so the work is not done in vain."""
        target = parse_repo(repo)

        def read(session: Session) -> str | None:
            return session.scalars(
                select(RepoRow.kind)
                .join(NamespaceRow)
                .where(NamespaceRow.name == target.namespace, RepoRow.name == target.name)
            ).first()

        existing = self._read(read)
        if existing is not None and existing != kind:
            raise _kind_conflict(target.repo, existing, kind)

    def pull(self, ref: str, dest: Path | str, progress: Callable[[int], None] | None = None) -> VersionInfo:
        """Write a version's files under ``dest``, verifying every hash. A pull that fails leaves
        nothing of its own behind (a folder it created is removed again); partial files left in
        ``dest`` by earlier pulls that were killed are removed first."""
        detail = self.info(ref)
        dest = Path(dest)
        _check_destination(dest)
        targets = {dest / check_relative_path(f.path): f for f in detail.files}
        new_root = _first_missing(dest)
        fresh = [t for t in targets if not t.exists()]
        try:
            dest.mkdir(parents=True, exist_ok=True)
            _remove_stale_partials(list(targets))
            self._fetch_all(detail.version.ref, targets, progress)
        except BaseException as exc:
            with suppress(OSError):  # the pull's own error is the one to report
                _undo_pull(new_root, fresh, dest)
            if isinstance(exc, OSError):
                way_out = "nothing of this pull was left there; pull into a folder you can write to, on a disk with room"
                raise write_error(exc, dest, way_out) or exc from None
            raise
        return detail.version

    def _fetch_all(
        self, label: str, targets: dict[Path, FileInfo], progress: Callable[[int], None] | None
    ) -> None:
        def fetch(item: tuple[Path, FileInfo]) -> None:
            target, file = item
            target.parent.mkdir(parents=True, exist_ok=True)
            self.blobs.read_to(file.sha256, target, f"{label} {file.path}")
            if progress is not None:
                progress(file.size)

        with ThreadPoolExecutor(_WORKERS) as pool:
            list(pool.map(fetch, targets.items()))

    def checkout(self, ref: str) -> Path:
        """A verified, read-only local copy of a version's files, cached by content digest, for loading
        a model or dataset in place without a pull of one's own. A cached copy whose files changed
        since they were verified is re-hashed, and made again when it no longer matches; ``gc``
        removes copies that go unused (see ``checkouts``)."""
        version = self.resolve(ref)
        folder = checkouts.cache_root(self.settings.home) / version.digest
        with _CHECKOUT_LOCK:  # one thread of this process checks a copy at a time; processes race safely
            if folder.is_dir() and (checkouts.intact(folder) or self._reverified(version.ref, folder)):
                checkouts.touch(folder)
                return folder
            self.check_writable(
                f"make a local copy of {version.ref} (`fmstack hub pull` writes one where you choose)"
            )
            with scratch_dir(self.settings.home, "checkout") as staging:
                self.pull(version.ref, staging / "copy")
                checkouts.install(staging / "copy", folder)
        return folder

    def _reverified(self, ref: str, folder: Path) -> bool:
        """Re-hash a cached copy whose stamp no longer matches; seal it again when every byte is right."""
        files = {f.path: f.sha256 for f in self.info(ref).files}
        if set(checkouts.snapshot(folder)) != set(files):
            return False
        for path, sha256 in files.items():
            with open(folder / path, "rb") as fin:
                if hashlib.file_digest(fin, "sha256").hexdigest() != sha256:
                    return False
        if not self.read_only:
            checkouts.seal(folder)
        return True

    # -- reading -----------------------------------------------------------------------------------

    def resolve(self, ref: str) -> VersionInfo:
        return self._read(lambda s: version_info(version_row(s, parse_ref(ref))))

    def info(self, ref: str) -> VersionDetail:
        def read(session: Session) -> VersionDetail:
            row = version_row(session, parse_ref(ref))
            files = session.scalars(
                select(FileRow).where(FileRow.version_id == row.id).order_by(FileRow.path)
            )
            aliases = session.scalars(select(AliasRow.name).where(AliasRow.version_id == row.id)).all()
            return VersionDetail(
                version=version_info(row),
                files=[FileInfo(f.path, f.sha256, f.size) for f in files],
                aliases=sorted(aliases),
                card=row.card,
                produced_by=row.run_id,
                inputs=lineage_mod.input_refs(session, row),
                used_by=lineage_mod.output_refs(session, row),
            )

        return self._read(read)

    def read_file(self, ref: str, path: str) -> bytes:
        """The verified bytes of one file of a version (for small files: configs, label maps)."""
        detail = self.info(ref)
        for file in detail.files:
            if file.path == path:
                return self.blobs.read_bytes(file.sha256, f"{detail.version.ref} {path}")
        raise NotFound(f"{detail.version.ref} has no file {path!r}")

    def ls(self, kind: Kind | None = None, namespace: str | None = None) -> list[RepoInfo]:
        if kind is not None and kind not in KINDS:
            raise InvalidInput(f"bad kind {kind!r}: use one of {', '.join(KINDS)}")

        def read(session: Session) -> list[RepoInfo]:
            query = select(RepoRow).join(NamespaceRow).order_by(NamespaceRow.name, RepoRow.name)
            if kind is not None:
                query = query.where(RepoRow.kind == kind)
            if namespace is not None:
                query = query.where(NamespaceRow.name == namespace)
            return [self._repo_info(session, repo) for repo in session.scalars(query)]

        return self._read(read)

    def _repo_info(self, session: Session, repo: RepoRow) -> RepoInfo:
        count, latest = session.execute(
            select(func.count(VersionRow.id), func.max(VersionRow.number)).where(
                VersionRow.repo_id == repo.id
            )
        ).one()
        aliases = session.execute(
            select(AliasRow.name, VersionRow.number)
            .join(VersionRow, AliasRow.version_id == VersionRow.id)
            .where(AliasRow.repo_id == repo.id)
        ).all()
        return RepoInfo(
            repo=f"{repo.namespace.name}/{repo.name}",
            kind=repo.kind,  # type: ignore[arg-type]
            visibility=repo.visibility,  # type: ignore[arg-type]
            created_at=repo.created_at,
            versions=count,
            latest=latest,
            aliases={name: number for name, number in sorted(aliases)},
        )

    def versions(self, repo: str) -> list[VersionInfo]:
        def read(session: Session) -> list[VersionInfo]:
            row = repo_row(session, parse_repo(repo))
            query = select(VersionRow).where(VersionRow.repo_id == row.id).order_by(VersionRow.number)
            return [version_info(v) for v in session.scalars(query)]

        return self._read(read)

    # -- aliases and cards -------------------------------------------------------------------------

    def tag(self, ref: str, alias: str) -> VersionInfo:
        """Point ``alias`` of the ref's repo at the ref's version; the move is logged."""
        check_alias(alias)

        def write(session: Session) -> VersionInfo:
            row = version_row(session, parse_ref(ref))
            self._move_alias(session, row.repo, alias, row)
            return version_info(row)

        return self._write(write)

    def untag(self, repo: str, alias: str) -> None:
        target = parse_repo(repo)

        def write(session: Session) -> None:
            owner = repo_row(session, target)
            row = session.scalars(
                select(AliasRow).where(AliasRow.repo_id == owner.id, AliasRow.name == alias)
            ).first()
            if row is None:
                raise NotFound(f"{target.repo} has no alias {alias!r}")
            old = session.get_one(VersionRow, row.version_id).number
            session.delete(row)
            session.add(self._alias_event(owner, alias, old, None))

        self._write(write)

    def _move_alias(self, session: Session, repo: RepoRow, alias: str, version: VersionRow) -> None:
        row = session.scalars(
            select(AliasRow).where(AliasRow.repo_id == repo.id, AliasRow.name == alias)
        ).first()
        if row is not None and row.version_id == version.id:
            return
        old = session.get_one(VersionRow, row.version_id).number if row is not None else None
        if row is None:
            session.add(AliasRow(repo_id=repo.id, name=alias, version_id=version.id, updated_at=now()))
        else:
            row.version_id, row.updated_at = version.id, now()
        session.add(self._alias_event(repo, alias, old, version.number))

    def _alias_event(self, repo: RepoRow, alias: str, old: int | None, new: int | None) -> AliasEventRow:
        return AliasEventRow(
            repo_id=repo.id, alias=alias, old_number=old, new_number=new, at=now(), who=self.settings.user
        )

    def alias_history(self, repo: str) -> list[AliasEvent]:
        def read(session: Session) -> list[AliasEvent]:
            found = repo_row(session, parse_repo(repo))
            rows = session.scalars(
                select(AliasEventRow).where(AliasEventRow.repo_id == found.id).order_by(AliasEventRow.id)
            )
            return [AliasEvent(r.alias, r.old_number, r.new_number, r.at, r.who) for r in rows]

        return self._read(read)

    def card(self, ref: str) -> str:
        return self.info(ref).card

    def set_card(self, ref: str, text: str) -> VersionInfo:
        """Replace a version's card (metadata, not content: the version's digest does not change)."""
        parse_card(text)

        def write(session: Session) -> VersionInfo:
            row = version_row(session, parse_ref(ref))
            row.card = text
            return version_info(row)

        return self._write(write)

    # -- lineage and removal -----------------------------------------------------------------------

    def lineage(self, ref: str) -> Lineage:
        return self._read(lambda s: lineage_mod.build(s, version_row(s, parse_ref(ref))))

    def rm(self, ref: str, *, force: bool = False) -> list[VersionInfo]:
        """Remove one version (``ns/name:N`` or ``ns/name@alias``) or a whole repo (``ns/name``).
        Refused while an alias points at it or a downstream version depends on it, unless ``force``.
        Blobs stay until ``gc``: other versions may share them."""
        parsed = parse_ref(ref)

        def write(session: Session) -> list[VersionInfo]:
            if parsed.version is None and parsed.alias is None:
                repo = repo_row(session, parsed)
                rows = list(session.scalars(select(VersionRow).where(VersionRow.repo_id == repo.id)))
            else:
                repo, rows = None, [version_row(session, parsed)]
            removed = [version_info(r) for r in rows]
            ids = [r.id for r in rows]
            self._check_removable(session, ids, force)
            for alias in session.scalars(select(AliasRow).where(AliasRow.version_id.in_(ids))):
                old = session.get_one(VersionRow, alias.version_id)
                session.add(self._alias_event(old.repo, alias.name, old.number, None))
                session.delete(alias)
            session.execute(delete(RunInputRow).where(RunInputRow.version_id.in_(ids)))
            session.execute(delete(FileRow).where(FileRow.version_id.in_(ids)))
            session.execute(delete(VersionRow).where(VersionRow.id.in_(ids)))
            if repo is not None:
                session.execute(delete(AliasEventRow).where(AliasEventRow.repo_id == repo.id))
                session.delete(repo)
            return removed

        return self._write(write)

    def _check_removable(self, session: Session, ids: list[int], force: bool) -> None:
        if force:
            return
        problems: list[str] = []
        aliases = session.execute(
            select(AliasRow.name, VersionRow.number)
            .join(VersionRow, AliasRow.version_id == VersionRow.id)
            .where(AliasRow.version_id.in_(ids))
        ).all()
        problems += [f"alias {name!r} points at version {number}" for name, number in aliases]
        for version_id in ids:
            row = session.get_one(VersionRow, version_id)
            downstream = [r for r in lineage_mod.output_refs(session, row) if r not in problems]
            problems += [f"{r} was produced from version {row.number}" for r in downstream]
        if problems:
            way_out = "Move the alias, or pass --force" if aliases else "Pass --force to remove it anyway"
            raise Conflict("refusing to remove: " + "; ".join(problems) + f". {way_out}")

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A read session, for modules (lineage, maintenance) that query the tables directly."""
        with self._sessions() as session:
            yield session


_CHECKOUT_LOCK = threading.Lock()


def _check_destination(dest: Path) -> None:
    """A pull destination is a folder, or can become one: no file on the way."""
    for place in (dest, *dest.parents):
        if place.exists():
            if not place.is_dir():
                what = "it is" if place == dest else f"{str(place)!r} is"
                raise InvalidInput(
                    f"cannot pull into {str(dest)!r}: {what} a file, not a folder; choose another destination"
                )
            return


def _first_missing(dest: Path) -> Path | None:
    """The outermost folder of ``dest`` that does not exist yet (what a pull creates), or None."""
    missing = None
    for place in (dest, *dest.parents):
        if place.exists():
            break
        missing = place
    return missing


def _remove_stale_partials(targets: list[Path]) -> None:
    by_folder: dict[Path, set[str]] = {}
    for target in targets:
        by_folder.setdefault(target.parent, set()).add(target.name)
    for folder, names in by_folder.items():
        for path in stale_partials(folder, names):
            path.unlink(missing_ok=True)


def _undo_pull(new_root: Path | None, fresh: list[Path], dest: Path) -> None:
    """Remove what a failed pull wrote: the folder it created, or the files that were not there."""
    if new_root is not None:
        remove_tree(new_root)
        return
    for path in fresh:
        path.unlink(missing_ok=True)
    for folder in sorted({p.parent for p in fresh}, key=lambda p: len(p.parts), reverse=True):
        while folder != dest and folder.is_relative_to(dest):
            try:
                folder.rmdir()  # only when empty: it held nothing but this pull's files
            except OSError:
                break
            folder = folder.parent


def _kind_conflict(repo: str, existing: str, kind: str) -> Conflict:
    a = a_kind
    return Conflict(
        f"{repo} is {a(existing)} repo, so it cannot take {a(kind)} version: choose another repo name"
    )


def _open_database(settings: Settings) -> Engine:
    """The hub's engine with its schema current; a folder or database that cannot be used is the
    user's to fix (``Unavailable``), not a bug."""
    engine: Engine | None = None
    try:
        engine = create_hub_engine(settings.database_url)
        migrate(engine, settings.home if engine.dialect.name == "sqlite" else None)
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
