"""Turning a manifest of uploaded, verified blobs into a version, atomically, as the pushing user.

Every blob must already be in the store (uploads put only verified bytes there); the version is then
committed in one hub transaction, so it is complete or absent, never partial. The files are staged
from the blob store into a scratch folder and pushed with the hub's own ``push`` (which re-verifies
each hash on the way), as a hub whose user is the pusher, so the version's creator is who pushed it.
"""

from __future__ import annotations

import dataclasses
import shutil
import tempfile
from pathlib import Path

from fmstack.errors import Conflict, InvalidInput
from fmstack.hub import Hub
from fmstack.hub.entities import VersionInfo
from fmstack.hub.manifest import ManifestEntry
from fmstack.server.manifests import PushManifest


def missing_blobs(hub: Hub, entries: list[ManifestEntry]) -> list[str]:
    """The distinct digests of ``entries`` the store lacks, in manifest order."""
    seen: dict[str, None] = {}
    for e in entries:
        if e.sha256 not in seen and not hub.blobs.has(e.sha256):
            seen[e.sha256] = None
    return list(seen)


def commit(
    hub: Hub, repo: str, manifest: PushManifest, entries: list[ManifestEntry], user: str
) -> VersionInfo:
    lacking = missing_blobs(hub, entries)
    if lacking:
        raise Conflict(
            f"{len(lacking)} file(s) of this version were not uploaded yet (first: sha256:{lacking[0]}); "
            "upload them, then commit again"
        )
    staging_root = hub.settings.home / "server-uploads" / "staging"
    staging_root.mkdir(parents=True, exist_ok=True)
    folder = Path(tempfile.mkdtemp(dir=staging_root))
    try:
        for e in entries:
            _stage(hub, folder, e, repo)
        with Hub(dataclasses.replace(hub.settings, user=user)) as as_user:
            return as_user.push(
                repo,
                folder,
                manifest.kind,
                message=manifest.message,
                alias=manifest.alias,
                card=manifest.card,
            )
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _stage(hub: Hub, folder: Path, entry: ManifestEntry, repo: str) -> None:
    dest = folder / entry.path
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        hub.blobs.read_to(entry.sha256, dest, f"{repo}/{entry.path}")
    except (NotADirectoryError, FileExistsError, IsADirectoryError):
        raise InvalidInput(
            f"bad manifest: {entry.path!r} is both a file and a folder of this version; rename one"
        ) from None
