"""Hugging Face revisions in terms of hub versions, as pure functions.

A Hugging Face client names a revision by a branch or tag (``main``), or by a 40-hex commit sha,
which it then reuses for every later call (``snapshot_download`` asks for the sha of ``main`` once,
then lists and downloads "at" that sha). Here:

  * a version's commit sha is the first 40 hex digits of its manifest digest: stable, derived from
    content, the same on every server holding the version; two versions with identical files share
    it, and either answers the same bytes;
  * a revision is, in this order: the sha of one of the repo's versions, a version number (``3``),
    an alias (``production``), or ``main`` for the latest version when no alias is named ``main``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from fmstack.errors import InvalidInput, NotFound, clip
from fmstack.hub.entities import VersionInfo
from fmstack.server.paths import LARGEST_NUMBER

_SHA_RE = re.compile(r"[0-9a-f]{40}")
LATEST = "main"


class RevisionNotFound(NotFound):
    """The repo exists (and may be read) but has no such revision."""


class EntryNotFound(NotFound):
    """The version exists but has no such file or folder; ``commit`` is the version's sha."""

    def __init__(self, message: str, commit: str) -> None:
        super().__init__(message)
        self.commit = commit


def commit_sha(version: VersionInfo) -> str:
    return version.digest[:40]


def check_revision(revision: str) -> str:
    """Refuse a revision that looks like a path (the client percent-encodes it into one URL segment)."""
    if revision in {".", ".."} or any(c in revision for c in "/\\\x00"):
        raise InvalidInput(
            f"bad revision {clip(revision)!r}: use a version number, an alias, 'main' or a commit sha"
        )
    return revision


def is_sha(revision: str) -> bool:
    return _SHA_RE.fullmatch(revision) is not None


def by_sha(versions: Sequence[VersionInfo], sha: str) -> VersionInfo | None:
    """The version whose commit sha is ``sha`` (the latest of several with the same files)."""
    found = [v for v in versions if commit_sha(v) == sha]
    return found[-1] if found else None


def hub_refs(repo: str, revision: str) -> list[str]:
    """The hub refs a revision that is not a known sha may name, in order: a version number or an
    alias, then, for ``main``, the latest version. A ref may not parse (``0``, ``1a``): the caller
    treats that as "not this one"."""
    if revision.isdigit() and (len(revision) > 19 or int(revision) > LARGEST_NUMBER):
        return []  # no version has that number (and the database could not even be asked)
    refs = [f"{repo}:{revision}" if revision.isdigit() else f"{repo}@{revision}"]
    if revision == LATEST:
        refs.append(repo)
    return refs


def revision_not_found(repo: str, revision: str, versions: Sequence[VersionInfo]) -> RevisionNotFound:
    have = ", ".join(str(v.number) for v in versions) or "none"
    return RevisionNotFound(
        f"{repo} has no revision {clip(revision)!r} (versions: {have}); use a version number, an alias, "
        f"'{LATEST}' for the latest version, or the sha the server gave"
    )
