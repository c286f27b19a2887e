"""Store checks and clean-up: ``fsck`` compares metadata with the blob store; ``gc`` removes blobs that
no version references. Never changes a version."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy import func, select

from fmstack.hub.blobs import LocalBlobStore
from fmstack.hub.manifest import ManifestEntry, manifest_digest
from fmstack.hub.resolve import ref_of
from fmstack.hub.schema import FileRow, VersionRow
from fmstack.hub.store import Hub


@dataclass
class FsckReport:
    checked_versions: int = 0
    checked_blobs: int = 0
    missing: list[str] = field(default_factory=list)  # "ref path sha256"
    corrupt: list[str] = field(default_factory=list)
    incomplete: list[str] = field(default_factory=list)  # versions whose manifest disagrees with their record
    orphans: list[str] = field(default_factory=list)  # blob hashes no version references
    orphan_bytes: int = 0

    @property
    def ok(self) -> bool:
        """Orphans are harmless (left by interrupted pushes or removed versions): gc removes them."""
        return not (self.missing or self.corrupt or self.incomplete)


def referenced_blobs(hub: Hub) -> set[str]:
    with hub.session() as session:
        return set(session.scalars(select(FileRow.sha256).distinct()))


def fsck(hub: Hub, verify: bool = True, progress: Callable[[int], None] | None = None) -> FsckReport:
    """Check every version's files: blob present, bytes matching the hash (unless ``verify=False``),
    manifest matching the version's digest, size and count. Orphan blobs are listed, not errors."""
    report = FsckReport()
    checked: dict[str, bool] = {}  # sha -> ok, so a blob shared by many versions is hashed once
    with hub.session() as session:
        versions = list(session.scalars(select(VersionRow).order_by(VersionRow.id)))
        for version in versions:
            report.checked_versions += 1
            files = list(session.scalars(select(FileRow).where(FileRow.version_id == version.id)))
            ref = ref_of(version)
            entries = [ManifestEntry(f.path, f.sha256, f.size) for f in files]
            if (
                not files
                or len(files) != version.file_count
                or sum(e.size for e in entries) != version.total_size
                or manifest_digest(entries) != version.digest
            ):
                report.incomplete.append(ref)
            for f in files:
                if f.sha256 not in checked:
                    checked[f.sha256] = _check_blob(hub, f.sha256, verify, report, f"{ref} {f.path}")
                    if progress is not None:
                        progress(1)
                elif not checked[f.sha256]:
                    (report.missing if not hub.blobs.has(f.sha256) else report.corrupt).append(
                        f"{ref} {f.path} sha256:{f.sha256}"
                    )
        known = set(session.scalars(select(FileRow.sha256).distinct()))
        report.checked_blobs = int(session.scalar(select(func.count(func.distinct(FileRow.sha256)))) or 0)
    for sha in hub.blobs.list():
        if sha not in known:
            report.orphans.append(sha)
            report.orphan_bytes += hub.blobs.size(sha)
    return report


def _check_blob(hub: Hub, sha: str, verify: bool, report: FsckReport, label: str) -> bool:
    if not hub.blobs.has(sha):
        report.missing.append(f"{label} sha256:{sha}")
        return False
    if verify and not hub.blobs.verify(sha):
        report.corrupt.append(f"{label} sha256:{sha}")
        return False
    return True


@dataclass(frozen=True)
class GcResult:
    removed: list[str]
    bytes_freed: int
    temp_files_removed: int
    dry_run: bool


def gc(hub: Hub, dry_run: bool = False) -> GcResult:
    """Remove blobs no version references, and temp files of killed writers. Holds the gc lock
    exclusively, so no push on this machine is between writing its blobs and committing them."""
    with hub.gc_lock.exclusive():
        known = referenced_blobs(hub)
        orphans = [sha for sha in hub.blobs.list() if sha not in known]
        freed = sum(hub.blobs.size(sha) for sha in orphans)
        temp = 0
        if not dry_run:
            for sha in orphans:
                hub.blobs.delete(sha)
            if isinstance(hub.blobs, LocalBlobStore):
                temp = hub.blobs.clean_temp()
    return GcResult(removed=orphans, bytes_freed=freed, temp_files_removed=temp, dry_run=dry_run)
