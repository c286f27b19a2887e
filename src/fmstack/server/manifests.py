"""What a client declares it is pushing: a version's manifest (path, sha256, size per file), checked
before a byte is uploaded: relative paths only, hex digests, sizes within the upload limit, no pickle
weights in models and adapters (they run code when loaded; ``fmstack hub import --convert`` turns
them into safetensors locally)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from fmstack.errors import InvalidInput, clip
from fmstack.hub.entities import Kind
from fmstack.hub.importers import PICKLE_SUFFIXES
from fmstack.hub.manifest import ManifestEntry
from fmstack.server.paths import LARGEST_NUMBER, file_path, sha256_of

MAX_FILES = 100_000


class FileEntry(BaseModel):
    model_config = ConfigDict(extra="forbid")
    path: str = Field(min_length=1, max_length=1024)
    sha256: str = Field(min_length=64, max_length=64)
    size: int = Field(ge=0, le=LARGEST_NUMBER)


class PushManifest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    kind: Kind
    files: list[FileEntry] = Field(min_length=1, max_length=MAX_FILES)
    message: str = Field("", max_length=10_000)
    alias: str | None = Field(None, max_length=64)
    card: str | None = Field(None, max_length=1_000_000)
    run_id: int | None = Field(
        None, ge=1, le=LARGEST_NUMBER, description="The caller's run that produced this version."
    )


def checked_entries(manifest: PushManifest) -> list[ManifestEntry]:
    """The manifest's files as hub entries, every problem named at once."""
    problems: list[str] = []
    entries: list[ManifestEntry] = []
    seen: set[str] = set()
    for f in manifest.files:
        try:
            path = file_path(f.path)
            entries.append(ManifestEntry(path, sha256_of(f.sha256), f.size))
        except InvalidInput as exc:
            problems.append(str(exc))
            continue
        if path in seen:
            problems.append(f"{clip(path)!r} is listed twice")
        seen.add(path)
        if manifest.kind in ("model", "adapter") and path.lower().endswith(PICKLE_SUFFIXES):
            problems.append(
                f"{clip(path)!r}: pickle weights can run arbitrary code when loaded, so fmstack stores "
                "safetensors only; convert them first (`fmstack hub import --convert`)"
            )
    problems += [
        f"{clip(path)!r} is a file and also a folder of {clip(other)!r}; rename one"
        for path, other in _file_and_folder(seen)
    ]
    if problems:
        raise InvalidInput("bad manifest: " + "; ".join(problems[:20]))
    return entries


def _file_and_folder(paths: set[str]) -> list[tuple[str, str]]:
    """Paths that are files and also folders of other paths (``a`` and ``a/b``): a version's files
    must be able to exist side by side in one folder."""
    clashes = []
    for path in sorted(paths):
        parts = path.split("/")
        for depth in range(1, len(parts)):
            folder = "/".join(parts[:depth])
            if folder in paths:
                clashes.append((folder, path))
    return clashes
