"""Turning a manifest of uploaded, verified blobs into a version, atomically, as the pushing user.

Every blob must already be in the store (uploads put only verified bytes there) and be the caller's to
name (``claims.py``: in a version they can read, or uploaded by them). The check and the
commit run under the hub's shared gc lock, so ``fmstack hub gc`` cannot remove an uploaded blob in
between; the version is then recorded in one hub transaction (``VersionStore.commit``): complete or
absent, never partial. No byte is copied: the manifest names blobs the store already holds.
"""

from __future__ import annotations

import dataclasses

from fmstack.errors import Conflict
from fmstack.hub import Hub
from fmstack.hub.cards import parse_card
from fmstack.hub.entities import VersionInfo
from fmstack.hub.manifest import ManifestEntry, manifest_digest
from fmstack.hub.refs import check_alias, parse_repo
from fmstack.server.manifests import PushManifest


def missing_blobs(hub: Hub, entries: list[ManifestEntry], owned: set[str]) -> list[str]:
    """The distinct digests of ``entries`` the caller must upload, in manifest order: those the store
    lacks, and those the caller does not own (``claims.claimable``): naming a digest is no proof of
    holding its bytes."""
    seen: dict[str, None] = {}
    for e in entries:
        if e.sha256 not in seen and not (e.sha256 in owned and hub.blobs.has(e.sha256)):
            seen[e.sha256] = None
    return list(seen)


def commit(
    hub: Hub, repo: str, manifest: PushManifest, entries: list[ManifestEntry], user: str, owned: set[str]
) -> VersionInfo:
    target = parse_repo(repo)
    if manifest.alias is not None:
        check_alias(manifest.alias)
    if manifest.card is not None:
        parse_card(manifest.card)
    hub.check_writable(f"store a new version of {target.repo}")
    # The version's creator is who pushed it: the catalogue of a hub opened as that user records it.
    with Hub(dataclasses.replace(hub.settings, user=user)) as as_user, as_user.gc_lock.shared():
        lacking = missing_blobs(as_user, entries, owned)
        if lacking:
            raise Conflict(
                f"{len(lacking)} file(s) of this version were not uploaded yet (first: sha256:{lacking[0]}); "
                "upload them, then commit again"
            )
        return as_user.catalog.commit(
            target,
            manifest.kind,
            entries,
            manifest_digest(entries),
            message=manifest.message,
            alias=manifest.alias,
            card=manifest.card,
            run_id=manifest.run_id,
        )
