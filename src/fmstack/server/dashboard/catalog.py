"""What the home page lists: counts, the newest versions and search, over every repo a caller may read.

The hub's API answers per repo (``ls``, ``versions``); a page over the whole hub needs one query
across repos, so these read the hub's tables through its engine, as ``server/visibility.py`` does.
Every row passes ``Principal.can_read`` (``server/access.py``) before it is shown: the same rule the
API applies, so a private repo of someone else appears nowhere here.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from fmstack.hub import Hub
from fmstack.hub.schema import AliasRow, NamespaceRow, RepoRow, VersionRow
from fmstack.server.access import Principal

RECENT = 20
SEARCH_LIMIT = 100
_SCAN = 2000  # rows looked at per query before visibility filtering (bounded time per page)


@dataclass(frozen=True)
class VersionRowView:
    repo: str
    kind: str
    number: int
    digest: str
    creator: str
    created_at: datetime
    total_size: int
    run_id: int | None
    message: str


@dataclass(frozen=True)
class Counts:
    repos: dict[str, int]  # kind -> repos the caller may read
    versions: int


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _visible_repos(session: Session, caller: Principal) -> dict[int, tuple[str, str]]:
    """repo id -> (ns/name, kind) of every repo the caller may read."""
    rows = session.execute(
        select(RepoRow.id, NamespaceRow.name, RepoRow.name, RepoRow.kind, RepoRow.visibility).join(
            NamespaceRow
        )
    ).all()
    return {
        rid: (f"{ns}/{name}", kind)
        for rid, ns, name, kind, visibility in rows
        if caller.can_read(ns, "public" if visibility == "public" else "private")
    }


def counts(hub: Hub, caller: Principal) -> Counts:
    with Session(hub.engine) as session:
        repos = _visible_repos(session, caller)
        per_repo = session.execute(
            select(VersionRow.repo_id, func.count()).group_by(VersionRow.repo_id)
        ).all()
    kinds: dict[str, int] = {}
    for _, kind in repos.values():
        kinds[kind] = kinds.get(kind, 0) + 1
    return Counts(kinds, sum(n for rid, n in per_repo if rid in repos))


def recent_versions(hub: Hub, caller: Principal, limit: int = RECENT) -> list[VersionRowView]:
    with Session(hub.engine) as session:
        repos = _visible_repos(session, caller)
        if not repos:
            return []
        query = (
            select(VersionRow)
            .where(VersionRow.repo_id.in_(list(repos)))
            .order_by(VersionRow.created_at.desc(), VersionRow.id.desc())
            .limit(limit)
        )
        return [_view(row, repos[row.repo_id]) for row in session.scalars(query)]


def search(hub: Hub, caller: Principal, text: str) -> list[tuple[str, str, str]]:
    """(ns/name, kind, why it matched) of readable repos whose name, namespace or kind holds ``text``,
    or whose latest card does; names first. Case-insensitive substring match."""
    needle = text.strip().lower()
    if not needle:
        return []
    with Session(hub.engine) as session:
        repos = _visible_repos(session, caller)
        found: dict[str, tuple[str, str, str]] = {}
        for repo, kind in sorted(repos.values()):
            if needle in repo.lower() or needle == kind:
                found[repo] = (repo, kind, "name" if needle in repo.lower() else "kind")
        latest = (
            select(VersionRow.repo_id, func.max(VersionRow.number).label("number"))
            .group_by(VersionRow.repo_id)
            .subquery()
        )
        cards = session.execute(
            select(VersionRow.repo_id)
            .join(latest, (latest.c.repo_id == VersionRow.repo_id) & (latest.c.number == VersionRow.number))
            .where(func.lower(VersionRow.card).contains(needle, autoescape=True))
            .limit(_SCAN)
        ).all()
    for (rid,) in cards:
        if rid in repos and repos[rid][0] not in found:
            repo, kind = repos[rid]
            found[repo] = (repo, kind, "card")
    return list(found.values())[:SEARCH_LIMIT]


def aliases(hub: Hub, repos: Iterable[str]) -> dict[str, list[str]]:
    """ref (``ns/name:N``) -> the aliases pointing at it, for every alias of ``repos``: one query,
    where ``Hub.ls`` would describe every repo of each namespace. The caller has checked access."""
    wanted = {tuple(r.split("/", 1)) for r in repos}
    if not wanted:
        return {}
    with Session(hub.engine) as session:
        rows = session.execute(
            select(NamespaceRow.name, RepoRow.name, VersionRow.number, AliasRow.name)
            .join(RepoRow, RepoRow.id == AliasRow.repo_id)
            .join(NamespaceRow, NamespaceRow.id == RepoRow.namespace_id)
            .join(VersionRow, VersionRow.id == AliasRow.version_id)
            .where(NamespaceRow.name.in_({ns for ns, _ in wanted}))
            .order_by(AliasRow.name)
        ).all()
    out: dict[str, list[str]] = {}
    for ns, name, number, alias in rows:
        if (ns, name) in wanted:
            out.setdefault(f"{ns}/{name}:{number}", []).append(alias)
    return out


def _view(row: VersionRow, repo: tuple[str, str]) -> VersionRowView:
    return VersionRowView(
        repo=repo[0],
        kind=repo[1],
        number=row.number,
        digest=row.digest,
        creator=row.creator,
        created_at=_aware(row.created_at),
        total_size=row.total_size,
        run_id=row.run_id,
        message=row.message,
    )
