"""Repo visibility (``public`` / ``private``), read and set on the hub's ``repos`` table, and whether a
repo holds a blob (a pull may fetch only blobs of versions the caller may read).

These are the hub's tables; the hub has no method for them yet, so the server reads and writes them
through the hub's engine. A repo is private until its owner makes it public.
"""

from __future__ import annotations

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from fmstack.errors import InvalidInput, NotFound
from fmstack.hub import Hub
from fmstack.hub.entities import Visibility
from fmstack.hub.refs import parse_repo
from fmstack.hub.schema import FileRow, NamespaceRow, RepoRow, VersionRow

VISIBILITIES: tuple[Visibility, ...] = ("public", "private")


def repo_not_found(repo: str) -> NotFound:
    """The hub's own error for a missing repo, word for word: a private repo must not be told apart."""
    return NotFound(f"no repo named {repo!r}; `fmstack hub ls` lists the repos in this hub")


def repo_visibility(hub: Hub, repo: str) -> Visibility | None:
    """The visibility of ``ns/name``, or None when there is no such repo."""
    target = parse_repo(repo)
    with Session(hub.engine) as session:
        value = session.scalars(
            select(RepoRow.visibility)
            .join(NamespaceRow)
            .where(NamespaceRow.name == target.namespace, RepoRow.name == target.name)
        ).first()
    if value is None:
        return None
    return "public" if value == "public" else "private"


def set_visibility(hub: Hub, repo: str, visibility: str) -> None:
    if visibility not in VISIBILITIES:
        raise InvalidInput(f"bad visibility {visibility!r}: use public or private")
    target = parse_repo(repo)
    hub.check_writable(f"change the visibility of {target.repo}")
    with Session(hub.engine) as session, session.begin():
        ids = select(NamespaceRow.id).where(NamespaceRow.name == target.namespace).scalar_subquery()
        done = session.execute(
            update(RepoRow)
            .where(RepoRow.namespace_id == ids, RepoRow.name == target.name)
            .values(visibility=visibility)
        )
        if getattr(done, "rowcount", 0) == 0:
            raise repo_not_found(target.repo)


def repo_holds_blob(hub: Hub, repo: str, sha256: str) -> bool:
    """Whether some version of ``repo`` has a file with this content."""
    target = parse_repo(repo)
    with Session(hub.engine) as session:
        found = session.scalars(
            select(FileRow.id)
            .join(VersionRow, VersionRow.id == FileRow.version_id)
            .join(RepoRow, RepoRow.id == VersionRow.repo_id)
            .join(NamespaceRow, NamespaceRow.id == RepoRow.namespace_id)
            .where(
                NamespaceRow.name == target.namespace, RepoRow.name == target.name, FileRow.sha256 == sha256
            )
            .limit(1)
        ).first()
    return found is not None
