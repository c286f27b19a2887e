"""Storing a built dataset folder as a hub version, inside a recorded run, exactly once.

The content digest is computed before anything is recorded: when the repo's latest version already
has it, that version is returned and no new run is created (re-ingesting the same files is a no-op).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from fmstack.data.sources import sha256_file
from fmstack.errors import NotFound
from fmstack.hub import Hub, VersionInfo
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


def latest_with_digest(hub: Hub, repo: str, digest: str) -> VersionInfo | None:
    try:
        latest = hub.resolve(repo)
    except NotFound:
        return None
    return latest if latest.digest == digest else None


def publish(
    hub: Hub,
    repo: str,
    folder: Path,
    *,
    card: str,
    run_kind: str,
    spec: dict[str, Any],
    inputs: Sequence[str] = (),
    message: str = "",
    started_at: datetime | None = None,
) -> Published:
    """The run is recorded here, once there is something new to store; ``started_at`` (when the work
    began) gives it its true duration."""
    existing = latest_with_digest(hub, repo, folder_digest(folder))
    if existing is not None:
        return Published(existing, True, existing.run_id)
    run_id = hub.runs.start(run_kind, spec, inputs=list(inputs), started_at=started_at)
    try:
        version = hub.push(repo, folder, "dataset", message=message, card=card, run_id=run_id)
    except BaseException:
        hub.runs.finish(run_id, "failed")
        raise
    hub.runs.finish(run_id, "succeeded", spec_update={"output": version.ref})
    return Published(version, False, run_id)
