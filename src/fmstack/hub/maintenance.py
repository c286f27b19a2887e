"""Store checks and clean-up: ``fsck`` compares metadata with the blob store and lists what killed
work left behind; ``gc`` removes blobs that no version references and those leftovers (unfinished
uploads, temp folders of processes that are gone, checkpoints of succeeded training runs). Never
changes a version, and never removes checkpoints that ``--resume`` may still need."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path

from fmstack.errors import NotFound
from fmstack.hub import checkouts
from fmstack.hub.checkpoint_dirs import checkpoint_folders, removable
from fmstack.hub.entities import FileInfo, VersionInfo
from fmstack.hub.manifest import ManifestEntry, manifest_digest
from fmstack.hub.scratch import Leftover, remove_tree, resumable_work, temp_folders
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
    leftovers: list[Leftover] = field(default_factory=list)  # unfinished uploads, temp folders
    leftover_bytes: int = 0

    @property
    def ok(self) -> bool:
        """Orphans and leftovers are harmless (left by killed work or removed versions): gc removes them."""
        return not (self.missing or self.corrupt or self.incomplete)


def referenced_blobs(hub: Hub) -> set[str]:
    return hub.catalog.referenced_blobs()


def fsck(hub: Hub, verify: bool = True, progress: Callable[[int], None] | None = None) -> FsckReport:
    """Check every version's files: blob present, bytes matching the hash (unless ``verify=False``),
    manifest matching the version's digest, size and count. Orphan blobs are listed, not errors."""
    report = FsckReport()
    checked: dict[str, bool] = {}  # sha -> ok, so a blob shared by many versions is hashed once
    for version, files in hub.catalog.manifests():
        report.checked_versions += 1
        if not _manifest_matches(version, files):
            report.incomplete.append(version.ref)
        for f in files:
            label = f"{version.ref} {f.path}"
            if f.sha256 not in checked:
                checked[f.sha256] = _check_blob(hub, f.sha256, verify, report, label)
                if progress is not None:
                    progress(1)
            elif not checked[f.sha256]:
                (report.missing if not hub.blobs.has(f.sha256) else report.corrupt).append(
                    f"{label} sha256:{f.sha256}"
                )
    known = hub.catalog.referenced_blobs()
    report.checked_blobs = len(known)
    for sha in hub.blobs.list():
        if sha not in known:
            report.orphans.append(sha)
            report.orphan_bytes += hub.blobs.size(sha)
    report.leftovers = leftovers(hub)
    report.leftover_bytes = sum(left.size for left in report.leftovers)
    return report


def leftovers(hub: Hub) -> list[Leftover]:
    """What ``gc`` removes besides orphan blobs: unfinished uploads (the local blob store's ``tmp/``,
    S3's multipart uploads),
    folders in ``$FMSTACK_HOME/tmp`` and resumable work in ``$FMSTACK_HOME/work`` (``live`` ones belong
    to processes that may still be running, and are kept), checkouts that went unused, and training
    checkpoints of runs that are not running (those ``keep`` says ``--resume`` may need are kept)."""
    uploads = hub.blobs.leftovers()
    digests = hub.catalog.digests()
    home = hub.settings.home
    return (
        uploads
        + temp_folders(home)
        + resumable_work(home)
        + checkouts.stale(home, digests)
        + checkpoint_folders(home, _status_of(hub))
    )


def _manifest_matches(version: VersionInfo, files: list[FileInfo]) -> bool:
    """The recorded files add up to the version's record: count, total size and digest."""
    entries = [ManifestEntry(f.path, f.sha256, f.size) for f in files]
    return (
        bool(files)
        and len(files) == version.file_count
        and sum(e.size for e in entries) == version.total_size
        and manifest_digest(entries) == version.digest
    )


def _status_of(hub: Hub) -> Callable[[int], str | None]:
    def status(run_id: int) -> str | None:
        try:
            return hub.runs.get(run_id).status  # "abandoned" when its process is gone
        except NotFound:
            return None

    return status


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
    temp_files_removed: int  # unfinished uploads among ``leftovers``
    dry_run: bool
    leftovers: list[Leftover] = field(default_factory=list)  # removed (or, dry run, to remove)
    leftover_bytes: int = 0


def gc(hub: Hub, dry_run: bool = False) -> GcResult:
    """Remove blobs no version references, and what killed writers left behind. Holds the gc lock
    exclusively, so no push on this machine is between writing its blobs and committing them; temp
    folders of processes still running are kept."""
    if not dry_run:
        hub.check_writable("remove unreferenced blobs and leftovers")
    # A read-only hub has no lock file to take, and no push of this machine can be writing to it.
    with nullcontext() if hub.read_only else hub.gc_lock.exclusive():
        known = referenced_blobs(hub)
        orphans = [sha for sha in hub.blobs.list() if sha not in known]
        freed = sum(hub.blobs.size(sha) for sha in orphans)
        stale = [left for left in leftovers(hub) if not (left.live or left.keep)]
        if not dry_run:
            for sha in orphans:
                hub.blobs.delete(sha)
            for left in stale:
                _remove(hub, left)
    uploads = sum(left.what == "unfinished upload" for left in stale)
    return GcResult(orphans, freed, uploads, dry_run, stale, sum(left.size for left in stale))


def _remove(hub: Hub, left: Leftover) -> None:
    if left.what == "unfinished upload":  # the blob store's own: a temp file, an S3 multipart upload
        hub.blobs.remove_leftover(left)
    elif "checkout" in left.what:
        checkouts.remove(Path(left.path))
    elif left.what.startswith("checkpoints"):
        if removable(Path(left.path), _status_of(hub)):
            remove_tree(Path(left.path))
    else:
        remove_tree(Path(left.path))
