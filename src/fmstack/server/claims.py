"""Which blobs a caller may name in a version: those in a version they can read, and those they proved
to hold by uploading their bytes. Content addressing must not let a manifest that names a sha256 stand
in for the bytes: without this, anyone who learned the digest of a file in a private repo could commit
a version of their own naming it, and read it.
"""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy.exc
from sqlalchemy import select
from sqlalchemy.orm import Session

from fmstack.hub import Hub
from fmstack.hub.schema import FileRow, NamespaceRow, RepoRow, VersionRow
from fmstack.server.access import Principal
from fmstack.server.schema import UploadClaimRow


def claimable(hub: Hub, caller: Principal, shas: set[str]) -> set[str]:
    """The digests among ``shas`` the caller may name without uploading them (again)."""
    if not shas:
        return set()
    with Session(hub.engine) as session:
        rows = session.execute(
            select(FileRow.sha256, NamespaceRow.name, RepoRow.visibility)
            .join(VersionRow, VersionRow.id == FileRow.version_id)
            .join(RepoRow, RepoRow.id == VersionRow.repo_id)
            .join(NamespaceRow, NamespaceRow.id == RepoRow.namespace_id)
            .where(FileRow.sha256.in_(shas))
            .distinct()
        ).all()
        readable = {sha for sha, namespace, visibility in rows if caller.can_read(namespace, visibility)}
        claimed: set[str] = set()
        if caller.user is not None:
            claimed = set(
                session.scalars(
                    select(UploadClaimRow.sha256).where(
                        UploadClaimRow.user == caller.user, UploadClaimRow.sha256.in_(shas)
                    )
                )
            )
    return readable | claimed


def record_claim(hub: Hub, user: str, sha256: str) -> None:
    try:
        with Session(hub.engine) as session, session.begin():
            session.add(UploadClaimRow(user=user, sha256=sha256, at=datetime.now(UTC)))
    except sqlalchemy.exc.IntegrityError:
        pass  # claimed before: the same proof twice
