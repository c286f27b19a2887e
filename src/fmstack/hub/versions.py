"""The version catalogue: repos, their immutable versions and each version's file manifest, in SQL.

``VersionStore`` owns every query on repo, version and file rows: committing a pushed manifest as a
new version, reading versions back (resolve, info, ls, versions, lineage), removing them, and the
listings that ``maintenance`` checks the blob store against. It never touches blob bytes: pushes store
blobs first and commit here after (``transfer``), so a crash leaves at most orphan blobs.
"""

from __future__ import annotations

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from fmstack.errors import Conflict, InvalidInput
from fmstack.hub import lineage as lineage_mod
from fmstack.hub.aliases import aliases_of, drop_aliases, move_alias
from fmstack.hub.entities import (
    KINDS,
    FileInfo,
    Kind,
    Lineage,
    RepoInfo,
    VersionDetail,
    VersionInfo,
    Visibility,
    a_kind,
)
from fmstack.hub.manifest import ManifestEntry
from fmstack.hub.refs import Ref, parse_ref, parse_repo
from fmstack.hub.resolve import repo_row, version_info, version_row
from fmstack.hub.schema import (
    AliasEventRow,
    AliasRow,
    FileRow,
    NamespaceRow,
    RepoRow,
    RunInputRow,
    VersionRow,
)
from fmstack.hub.transactions import Transactions, now

VISIBILITIES: tuple[Visibility, ...] = ("public", "private")


def check_kind(kind: str | None) -> None:
    if kind is not None and kind not in KINDS:
        raise InvalidInput(f"bad kind {kind!r}: use one of {', '.join(KINDS)}")


class VersionStore:
    """Versions of repos, created and removed as ``user``."""

    def __init__(self, db: Transactions, user: str) -> None:
        self._db = db
        self._user = user

    # -- writing -----------------------------------------------------------------------------------

    def commit(
        self,
        target: Ref,
        kind: Kind,
        entries: list[ManifestEntry],
        digest: str,
        *,
        message: str = "",
        alias: str | None = None,
        card: str | None = None,
        run_id: int | None = None,
    ) -> VersionInfo:
        """Record stored blobs as the next version of ``target`` in one transaction (the latest version
        when its digest is the same), moving ``alias`` and setting ``card`` in the same transaction."""
        return self._db.write(
            lambda s: self._commit(s, target, kind, entries, digest, message, alias, card, run_id)
        )

    def _commit(
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
                creator=self._user,
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
            move_alias(session, repo, alias, row, self._user)
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
            if not force:
                _check_removable(session, ids)
            drop_aliases(session, ids, self._user)
            session.execute(delete(RunInputRow).where(RunInputRow.version_id.in_(ids)))
            session.execute(delete(FileRow).where(FileRow.version_id.in_(ids)))
            session.execute(delete(VersionRow).where(VersionRow.id.in_(ids)))
            if repo is not None:
                session.execute(delete(AliasEventRow).where(AliasEventRow.repo_id == repo.id))
                session.delete(repo)
            return removed

        return self._db.write(write)

    # -- reading -----------------------------------------------------------------------------------

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

        existing = self._db.read(read)
        if existing is not None and existing != kind:
            raise _kind_conflict(target.repo, existing, kind)

    def resolve(self, ref: str) -> VersionInfo:
        return self._db.read(lambda s: version_info(version_row(s, parse_ref(ref))))

    def info(self, ref: str) -> VersionDetail:
        def read(session: Session) -> VersionDetail:
            row = version_row(session, parse_ref(ref))
            aliases = session.scalars(select(AliasRow.name).where(AliasRow.version_id == row.id)).all()
            return VersionDetail(
                version=version_info(row),
                files=_files(session, row.id, ordered=True),
                aliases=sorted(aliases),
                card=row.card,
                produced_by=row.run_id,
                inputs=lineage_mod.input_refs(session, row),
                used_by=lineage_mod.output_refs(session, row),
            )

        return self._db.read(read)

    def ls(self, kind: Kind | None = None, namespace: str | None = None) -> list[RepoInfo]:
        check_kind(kind)

        def read(session: Session) -> list[RepoInfo]:
            query = select(RepoRow).join(NamespaceRow).order_by(NamespaceRow.name, RepoRow.name)
            if kind is not None:
                query = query.where(RepoRow.kind == kind)
            if namespace is not None:
                query = query.where(NamespaceRow.name == namespace)
            return [_repo_info(session, repo) for repo in session.scalars(query)]

        return self._db.read(read)

    def versions(self, repo: str) -> list[VersionInfo]:
        def read(session: Session) -> list[VersionInfo]:
            row = repo_row(session, parse_repo(repo))
            query = select(VersionRow).where(VersionRow.repo_id == row.id).order_by(VersionRow.number)
            return [version_info(v) for v in session.scalars(query)]

        return self._db.read(read)

    def lineage(self, ref: str) -> Lineage:
        return self._db.read(lambda s: lineage_mod.build(s, version_row(s, parse_ref(ref))))

    # -- for the hub server (access control) -------------------------------------------------------

    def visibility(self, repo: str) -> Visibility | None:
        """The visibility of ``ns/name``, or None when there is no such repo."""
        target = parse_repo(repo)

        def read(session: Session) -> str | None:
            return session.scalars(
                select(RepoRow.visibility)
                .join(NamespaceRow)
                .where(NamespaceRow.name == target.namespace, RepoRow.name == target.name)
            ).first()

        value = self._db.read(read)
        return None if value is None else "public" if value == "public" else "private"

    def set_visibility(self, repo: str, visibility: str) -> None:
        if visibility not in VISIBILITIES:
            raise InvalidInput(f"bad visibility {visibility!r}: use public or private")
        target = parse_repo(repo)
        self._db.check_writable(f"change the visibility of {target.repo}")

        def write(session: Session) -> None:
            found = repo_row(session, target)
            session.execute(update(RepoRow).where(RepoRow.id == found.id).values(visibility=visibility))

        self._db.write(write)

    def holds_blob(self, repo: str, sha256: str) -> bool:
        """Whether some version of ``repo`` has a file with this content (a pull may fetch only the
        blobs of versions its caller may read)."""
        target = parse_repo(repo)

        def read(session: Session) -> bool:
            query = (
                select(FileRow.id)
                .join(VersionRow, VersionRow.id == FileRow.version_id)
                .join(RepoRow, RepoRow.id == VersionRow.repo_id)
                .join(NamespaceRow, NamespaceRow.id == RepoRow.namespace_id)
                .where(NamespaceRow.name == target.namespace, RepoRow.name == target.name)
                .where(FileRow.sha256 == sha256)
                .limit(1)
            )
            return session.scalars(query).first() is not None

        return self._db.read(read)

    # -- for maintenance (fsck, gc) ----------------------------------------------------------------

    def manifests(self) -> list[tuple[VersionInfo, list[FileInfo]]]:
        """Every version with its recorded files, oldest first, read in one session."""

        def read(session: Session) -> list[tuple[VersionInfo, list[FileInfo]]]:
            rows = session.scalars(select(VersionRow).order_by(VersionRow.id))
            return [(version_info(row), _files(session, row.id, ordered=False)) for row in rows]

        return self._db.read(read)

    def referenced_blobs(self) -> set[str]:
        """The sha256 of every blob some version names (what ``gc`` must keep)."""
        return self._db.read(lambda s: set(s.scalars(select(FileRow.sha256).distinct())))

    def digests(self) -> set[str]:
        """Every version's digest (what names a checkout that may still be used)."""
        return self._db.read(lambda s: set(s.scalars(select(VersionRow.digest))))


def _files(session: Session, version_id: int, *, ordered: bool) -> list[FileInfo]:
    query = select(FileRow).where(FileRow.version_id == version_id)
    if ordered:
        query = query.order_by(FileRow.path)
    return [FileInfo(f.path, f.sha256, f.size) for f in session.scalars(query)]


def _repo_info(session: Session, repo: RepoRow) -> RepoInfo:
    count, latest = session.execute(
        select(func.count(VersionRow.id), func.max(VersionRow.number)).where(VersionRow.repo_id == repo.id)
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


def _check_removable(session: Session, ids: list[int]) -> None:
    aliases = aliases_of(session, ids)
    problems = [f"alias {name!r} points at version {number}" for name, number in aliases]
    for version_id in ids:
        row = session.get_one(VersionRow, version_id)
        downstream = [r for r in lineage_mod.output_refs(session, row) if r not in problems]
        problems += [f"{r} was produced from version {row.number}" for r in downstream]
    if problems:
        way_out = "Move the alias, or pass --force" if aliases else "Pass --force to remove it anyway"
        raise Conflict("refusing to remove: " + "; ".join(problems) + f". {way_out}")


def _kind_conflict(repo: str, existing: str, kind: str) -> Conflict:
    a = a_kind
    return Conflict(
        f"{repo} is {a(existing)} repo, so it cannot take {a(kind)} version: choose another repo name"
    )
