"""Storing a built dataset folder as the hub version its run produced, exactly once.

The caller records the run when its work starts (``hub.runs.recorded``). The content digest is
computed before anything is stored: when the repo's latest version already has it, that version is
returned and the run is discarded (re-ingesting the same files adds nothing, not even a run).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fmstack.data.sources import sha256_file
from fmstack.errors import NotFound
from fmstack.hub import HubApi, VersionInfo
from fmstack.hub.manifest import ManifestEntry, collect_files, manifest_digest


@dataclass(frozen=True)
class Published:
    version: VersionInfo
    reused: bool  # True when identical content was already the latest version
    run_id: int | None


def folder_digest(folder: Path) -> str:
    """The digest the hub will give this folder (same algorithm as ``Hub.push``)."""
    return manifest_digest(
        ManifestEntry(rel, sha256_file(p), p.stat().st_size) for rel, p in collect_files(folder)
    )


def latest_with_digest(hub: HubApi, repo: str, digest: str) -> VersionInfo | None:
    try:
        latest = hub.resolve(repo)
    except NotFound:
        return None
    return latest if latest.digest == digest else None


def publish(
    hub: HubApi,
    repo: str,
    folder: Path,
    *,
    card: str,
    run_id: int,
    message: str = "",
    details: dict[str, Any] | None = None,
) -> Published:
    """Push ``folder`` as a version produced by run ``run_id`` and close the run as succeeded, with
    ``details`` (what was learnt while working: sources, columns) added to its spec."""
    existing = latest_with_digest(hub, repo, folder_digest(folder))
    if existing is not None:
        hub.runs.discard(run_id)
        return Published(existing, True, existing.run_id)
    version = hub.push(repo, folder, "dataset", message=message, card=card, run_id=run_id)
    hub.runs.finish(run_id, "succeeded", spec_update={**(details or {}), "output": version.ref})
    return Published(version, False, run_id)
