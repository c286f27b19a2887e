"""Moving files between folders and the hub: push (folder -> blobs, then one version commit), pull
(blobs -> folder, every hash verified), checkout (a cached, verified, read-only copy) and read_file.

Blobs are always written before the metadata that names them, and under the gc lock, so a crash at
any point leaves at most orphan blobs, never a visible partial version. The SQL lives in
``versions``; this module only orders the steps and cleans up after failed ones.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import suppress
from pathlib import Path

from fmstack.errors import InvalidInput, NotFound
from fmstack.hub import checkouts
from fmstack.hub.blobs import BlobStore, stale_partials
from fmstack.hub.cards import parse_card
from fmstack.hub.entities import FileInfo, Kind, VersionInfo
from fmstack.hub.gc_lock import GcLock
from fmstack.hub.manifest import ManifestEntry, check_relative_path, collect_files, manifest_digest
from fmstack.hub.refs import check_alias, parse_repo
from fmstack.hub.scratch import remove_tree, scratch_dir
from fmstack.hub.transactions import Transactions
from fmstack.hub.versions import VersionStore, check_kind
from fmstack.hub.writes import store_way_out, write_error

_WORKERS = 4  # blob hashing/copying threads; hashlib and file I/O release the GIL
_CHECKOUT_LOCK = threading.Lock()


class Transfers:
    """Push, pull and checkout for one hub: its blob store, catalogue and home folder."""

    def __init__(
        self,
        db: Transactions,
        catalog: VersionStore,
        blobs: BlobStore,
        gc_lock: GcLock,
        home: Path,
        store_url: str,
    ) -> None:
        self._db = db
        self._catalog = catalog
        self._blobs = blobs
        self._gc_lock = gc_lock
        self._home = home
        self._store_url = store_url

    def push(
        self,
        repo: str,
        path: Path | str,
        kind: Kind,
        *,
        message: str = "",
        alias: str | None = None,
        card: str | None = None,
        run_id: int | None = None,
        progress: Callable[[int], None] | None = None,
    ) -> VersionInfo:
        """Store a folder (or one file) as a new version of ``repo``. Content identical to the latest
        version returns that version. ``progress`` is called with byte counts as files are stored."""
        target = parse_repo(repo)
        check_kind(kind)
        if alias is not None:
            check_alias(alias)
        if card is not None:
            parse_card(card)
        self._db.check_writable(f"store a new version of {target.repo}")
        self._catalog.check_repo_kind(repo, kind)  # before copying any bytes; the commit checks again
        files = collect_files(Path(path))
        try:
            with self._gc_lock.shared():
                entries = self._store_blobs(files, progress)
                return self._catalog.commit(
                    target,
                    kind,
                    entries,
                    manifest_digest(entries),
                    message=message,
                    alias=alias,
                    card=card,
                    run_id=run_id,
                )
        except OSError as exc:  # the lock file, a blob: a full disk, a read-only folder, a size limit
            raise write_error(exc, self._store_url, store_way_out()) or exc from None

    def _store_blobs(
        self, files: list[tuple[str, Path]], progress: Callable[[int], None] | None
    ) -> list[ManifestEntry]:
        def store(item: tuple[str, Path]) -> ManifestEntry:
            blob = self._blobs.put_file(item[1])
            if progress is not None:
                progress(blob.size)
            return ManifestEntry(item[0], blob.sha256, blob.size)

        with ThreadPoolExecutor(_WORKERS) as pool:
            return list(pool.map(store, files))

    def pull(self, ref: str, dest: Path | str, progress: Callable[[int], None] | None = None) -> VersionInfo:
        """Write a version's files under ``dest``, verifying every hash. A pull that fails leaves
        nothing of its own behind (a folder it created is removed again); partial files left in
        ``dest`` by earlier pulls that were killed are removed first."""
        detail = self._catalog.info(ref)
        dest = Path(dest)
        _check_destination(dest)
        targets = {dest / check_relative_path(f.path): f for f in detail.files}
        new_root = _first_missing(dest)
        fresh = [t for t in targets if not t.exists()]
        try:
            dest.mkdir(parents=True, exist_ok=True)
            _remove_stale_partials(list(targets))
            self._fetch_all(detail.version.ref, targets, progress)
        except BaseException as exc:
            with suppress(OSError):  # the pull's own error is the one to report
                _undo_pull(new_root, fresh, dest)
            if isinstance(exc, OSError):
                way_out = "nothing of this pull was left there; pull into a folder you can write to, on a disk with room"
                raise write_error(exc, dest, way_out) or exc from None
            raise
        return detail.version

    def _fetch_all(
        self, label: str, targets: dict[Path, FileInfo], progress: Callable[[int], None] | None
    ) -> None:
        def fetch(item: tuple[Path, FileInfo]) -> None:
            target, file = item
            target.parent.mkdir(parents=True, exist_ok=True)
            self._blobs.read_to(file.sha256, target, f"{label} {file.path}")
            if progress is not None:
                progress(file.size)

        with ThreadPoolExecutor(_WORKERS) as pool:
            list(pool.map(fetch, targets.items()))

    def checkout(self, ref: str) -> Path:
        """A verified, read-only local copy of a version's files, cached by content digest, for loading
        a model or dataset in place without a pull of one's own. A cached copy whose files changed
        since they were verified is re-hashed, and made again when it no longer matches; ``gc``
        removes copies that go unused (see ``checkouts``)."""
        version = self._catalog.resolve(ref)
        folder = checkouts.cache_root(self._home) / version.digest
        with _CHECKOUT_LOCK:  # one thread of this process checks a copy at a time; processes race safely
            if folder.is_dir() and (checkouts.intact(folder) or self._reverified(version.ref, folder)):
                checkouts.touch(folder)
                return folder
            self._db.check_writable(
                f"make a local copy of {version.ref} (`fmstack hub pull` writes one where you choose)"
            )
            with scratch_dir(self._home, "checkout") as staging:
                self.pull(version.ref, staging / "copy")
                checkouts.install(staging / "copy", folder)
        return folder

    def _reverified(self, ref: str, folder: Path) -> bool:
        """Re-hash a cached copy whose stamp no longer matches; seal it again when every byte is right."""
        files = {f.path: f.sha256 for f in self._catalog.info(ref).files}
        if set(checkouts.snapshot(folder)) != set(files):
            return False
        for path, sha256 in files.items():
            with open(folder / path, "rb") as fin:
                if hashlib.file_digest(fin, "sha256").hexdigest() != sha256:
                    return False
        if not self._db.read_only:
            checkouts.seal(folder)
        return True

    def read_file(self, ref: str, path: str) -> bytes:
        """The verified bytes of one file of a version (for small files: configs, label maps)."""
        detail = self._catalog.info(ref)
        for file in detail.files:
            if file.path == path:
                return self._blobs.read_bytes(file.sha256, f"{detail.version.ref} {path}")
        raise NotFound(f"{detail.version.ref} has no file {path!r}")


def _check_destination(dest: Path) -> None:
    """A pull destination is a folder, or can become one: no file on the way."""
    for place in (dest, *dest.parents):
        if place.exists():
            if not place.is_dir():
                what = "it is" if place == dest else f"{str(place)!r} is"
                raise InvalidInput(
                    f"cannot pull into {str(dest)!r}: {what} a file, not a folder; choose another destination"
                )
            return


def _first_missing(dest: Path) -> Path | None:
    """The outermost folder of ``dest`` that does not exist yet (what a pull creates), or None."""
    missing = None
    for place in (dest, *dest.parents):
        if place.exists():
            break
        missing = place
    return missing


def _remove_stale_partials(targets: list[Path]) -> None:
    by_folder: dict[Path, set[str]] = {}
    for target in targets:
        by_folder.setdefault(target.parent, set()).add(target.name)
    for folder, names in by_folder.items():
        for path in stale_partials(folder, names):
            path.unlink(missing_ok=True)


def _undo_pull(new_root: Path | None, fresh: list[Path], dest: Path) -> None:
    """Remove what a failed pull wrote: the folder it created, or the files that were not there."""
    if new_root is not None:
        remove_tree(new_root)
        return
    for path in fresh:
        path.unlink(missing_ok=True)
    for folder in sorted({p.parent for p in fresh}, key=lambda p: len(p.parts), reverse=True):
        while folder != dest and folder.is_relative_to(dest):
            try:
                folder.rmdir()  # only when empty: it held nothing but this pull's files
            except OSError:
                break
            folder = folder.parent
