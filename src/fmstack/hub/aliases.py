"""Aliases: movable names (``production``, ``staging``) for a repo's versions, with every move logged.

``AliasStore`` is the public side (``Hub.tag``, ``Hub.untag``, ``Hub.alias_history``); ``move_alias``
and ``drop_aliases`` are the same rules for the version store, inside its own transactions (a push
that sets an alias, a removal that drops the aliases of what it removes).
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from fmstack.errors import NotFound
from fmstack.hub.entities import AliasEvent, VersionInfo
from fmstack.hub.refs import check_alias, parse_ref, parse_repo
from fmstack.hub.resolve import repo_row, version_info, version_row
from fmstack.hub.schema import AliasEventRow, AliasRow, RepoRow, VersionRow
from fmstack.hub.transactions import Transactions, now


def move_alias(session: Session, repo: RepoRow, alias: str, version: VersionRow, who: str) -> None:
    """Point ``alias`` of ``repo`` at ``version`` and log the move (nothing when it points there already)."""
    row = session.scalars(select(AliasRow).where(AliasRow.repo_id == repo.id, AliasRow.name == alias)).first()
    if row is not None and row.version_id == version.id:
        return
    old = session.get_one(VersionRow, row.version_id).number if row is not None else None
    if row is None:
        session.add(AliasRow(repo_id=repo.id, name=alias, version_id=version.id, updated_at=now()))
    else:
        row.version_id, row.updated_at = version.id, now()
    session.add(_event(repo, alias, old, version.number, who))


def drop_aliases(session: Session, version_ids: list[int], who: str) -> None:
    """Remove every alias pointing at one of ``version_ids``, logging each removal."""
    for alias in session.scalars(select(AliasRow).where(AliasRow.version_id.in_(version_ids))):
        old = session.get_one(VersionRow, alias.version_id)
        session.add(_event(old.repo, alias.name, old.number, None, who))
        session.delete(alias)


def aliases_of(session: Session, version_ids: list[int]) -> list[tuple[str, int]]:
    """(alias, version number) for the aliases pointing at ``version_ids``."""
    rows = session.execute(
        select(AliasRow.name, VersionRow.number)
        .join(VersionRow, AliasRow.version_id == VersionRow.id)
        .where(AliasRow.version_id.in_(version_ids))
    ).all()
    return [(name, number) for name, number in rows]


def _event(repo: RepoRow, alias: str, old: int | None, new: int | None, who: str) -> AliasEventRow:
    return AliasEventRow(repo_id=repo.id, alias=alias, old_number=old, new_number=new, at=now(), who=who)


class AliasStore:
    """Tag, untag and the alias log, as ``user``."""

    def __init__(self, db: Transactions, user: str) -> None:
        self._db = db
        self._user = user

    def tag(self, ref: str, alias: str) -> VersionInfo:
        """Point ``alias`` of the ref's repo at the ref's version; the move is logged."""
        check_alias(alias)

        def write(session: Session) -> VersionInfo:
            row = version_row(session, parse_ref(ref))
            move_alias(session, row.repo, alias, row, self._user)
            return version_info(row)

        return self._db.write(write)

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
            session.add(_event(owner, alias, old, None, self._user))

        self._db.write(write)

    def history(self, repo: str) -> list[AliasEvent]:
        def read(session: Session) -> list[AliasEvent]:
            found = repo_row(session, parse_repo(repo))
            rows = session.scalars(
                select(AliasEventRow).where(AliasEventRow.repo_id == found.id).order_by(AliasEventRow.id)
            )
            return [AliasEvent(r.alias, r.old_number, r.new_number, r.at, r.who) for r in rows]

        return self._db.read(read)
