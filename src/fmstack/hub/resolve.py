"""Turning parsed refs into rows, with the errors a user sees for unknown repos, versions and aliases,
and version rows back into refs and ``VersionInfo`` entities (no row leaves the store modules)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from fmstack.errors import NotFound
from fmstack.hub.entities import VersionInfo
from fmstack.hub.refs import Ref
from fmstack.hub.schema import AliasRow, NamespaceRow, RepoRow, VersionRow


def repo_row(session: Session, ref: Ref) -> RepoRow:
    repo = session.scalars(
        select(RepoRow).join(NamespaceRow).where(NamespaceRow.name == ref.namespace, RepoRow.name == ref.name)
    ).first()
    if repo is None:
        raise NotFound(f"no repo named {ref.repo!r}; `fmstack hub ls` lists the repos in this hub")
    return repo


def version_row(session: Session, ref: Ref) -> VersionRow:
    repo = repo_row(session, ref)
    query = select(VersionRow).where(VersionRow.repo_id == repo.id)
    if ref.alias is not None:
        alias = session.scalars(
            select(AliasRow).where(AliasRow.repo_id == repo.id, AliasRow.name == ref.alias)
        ).first()
        if alias is None:
            names = session.scalars(select(AliasRow.name).where(AliasRow.repo_id == repo.id)).all()
            known = ", ".join(sorted(names)) or "none yet"
            hint = (
                f"the latest version is {ref.repo} with no alias"
                if ref.alias == "latest"
                else f"set one with `fmstack hub tag {ref.repo}:N {ref.alias}`"
            )
            raise NotFound(f"{ref.repo} has no alias {ref.alias!r} (aliases: {known}); {hint}")
        query = query.where(VersionRow.id == alias.version_id)
    elif ref.version is not None:
        query = query.where(VersionRow.number == ref.version)
    else:
        query = query.order_by(VersionRow.number.desc()).limit(1)
    row = session.scalars(query).first()
    if row is None:
        numbers = session.scalars(select(VersionRow.number).where(VersionRow.repo_id == repo.id)).all()
        have = ", ".join(map(str, sorted(numbers))) or "none"
        raise NotFound(f"{ref.repo} has no version {ref.version} (versions: {have})")
    return row


def ref_of(row: VersionRow) -> str:
    return f"{row.repo.namespace.name}/{row.repo.name}:{row.number}"


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
