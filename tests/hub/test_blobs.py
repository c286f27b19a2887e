"""Blob stores: content addressing, dedup, verification on read; local, fsspec (memory://) and a real
S3 server (SeaweedFS, the ``seaweed`` fixture)."""

from __future__ import annotations

import hashlib
import uuid
from pathlib import Path

import pytest

from fmstack.errors import IntegrityError, NotFound
from fmstack.hub import Hub
from fmstack.hub.blobs import BlobStore, FsspecBlobStore, LocalBlobStore, open_blob_store
from fmstack.settings import Settings
from tests.hub.folders import make_folder


@pytest.fixture(params=["local", "memory", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> BlobStore:
    if request.param == "local":
        return open_blob_store(str(tmp_path / "blobs"))
    if request.param == "s3":
        return open_blob_store(request.getfixturevalue("s3_store_url"))
    return open_blob_store(f"memory://fmstack-test-{uuid.uuid4().hex}")


def test_open_blob_store_picks_the_backend_by_url(tmp_path: Path) -> None:
    assert isinstance(open_blob_store(str(tmp_path)), LocalBlobStore)
    assert isinstance(open_blob_store(f"file://{tmp_path}"), LocalBlobStore)
    assert isinstance(open_blob_store("memory://x"), FsspecBlobStore)


def test_put_is_content_addressed_and_deduplicated(store: BlobStore, tmp_path: Path) -> None:
    src = tmp_path / "a.bin"
    src.write_bytes(b"hello" * 1000)
    blob = store.put_file(src)
    assert blob.sha256 == hashlib.sha256(src.read_bytes()).hexdigest() and blob.size == 5000
    copy = tmp_path / "b.bin"
    copy.write_bytes(src.read_bytes())
    assert store.put_file(copy) == blob
    assert list(store.list()) == [blob.sha256]
    store.read_to(blob.sha256, tmp_path / "out.bin", "test")
    assert (tmp_path / "out.bin").read_bytes() == src.read_bytes()
    assert store.read_bytes(blob.sha256, "test") == src.read_bytes()
    store.delete(blob.sha256)
    assert not store.has(blob.sha256)
    with pytest.raises(NotFound, match="is missing"):
        store.read_bytes(blob.sha256, "a.bin of acme/m:1")


def test_a_corrupt_blob_is_never_returned(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path / "blobs")
    src = tmp_path / "a.bin"
    src.write_bytes(b"good bytes")
    blob = store.put_file(src)
    (tmp_path / "blobs/sha256" / blob.sha256[:2] / blob.sha256[2:]).write_bytes(b"evil bytes")
    dest = tmp_path / "out.bin"
    with pytest.raises(IntegrityError, match="acme/m:1 a.bin: stored blob sha256:.* is corrupt"):
        store.read_to(blob.sha256, dest, "acme/m:1 a.bin")
    assert not dest.exists() and list(tmp_path.glob(".out.bin*")) == []
    with pytest.raises(IntegrityError):
        store.read_bytes(blob.sha256, "acme/m:1 a.bin")
    assert not store.verify(blob.sha256)
    assert store.put_file(src) == blob  # storing the same bytes again repairs the damaged copy
    assert store.verify(blob.sha256) and store.read_bytes(blob.sha256, "a.bin") == b"good bytes"


def overwrite_blob(store: BlobStore, sha256: str, data: bytes) -> None:
    """Damage a stored blob in place, as bit rot or a stray write would."""
    if isinstance(store, LocalBlobStore):
        path = store.root / "sha256" / sha256[:2] / sha256[2:]
        path.chmod(0o644)
        path.write_bytes(data)
    else:
        assert isinstance(store, FsspecBlobStore)
        store.fs.pipe_file(f"{store.root}/sha256/{sha256[:2]}/{sha256[2:]}", data)


def test_every_store_verifies_before_the_rename(store: BlobStore, tmp_path: Path) -> None:
    """Both stores read through the same verify-then-rename path: a corrupt blob raises, and neither
    the destination nor a partial file is left; an existing destination keeps its bytes."""
    src = tmp_path / "a.bin"
    src.write_bytes(b"good bytes" * 1000)
    blob = store.put_file(src)
    overwrite_blob(store, blob.sha256, b"evil bytes" * 1000)
    (tmp_path / "kept.bin").write_bytes(b"older copy")
    for dest in (tmp_path / "out.bin", tmp_path / "kept.bin"):
        with pytest.raises(IntegrityError, match="acme/m:1 a.bin: stored blob sha256:.* is corrupt"):
            store.read_to(blob.sha256, dest, "acme/m:1 a.bin")
        assert list(tmp_path.glob(f".{dest.name}*")) == []
    assert not (tmp_path / "out.bin").exists() and (tmp_path / "kept.bin").read_bytes() == b"older copy"


def test_hub_on_an_fsspec_store(tmp_path: Path) -> None:
    settings = Settings(
        home=tmp_path,
        database_url=f"sqlite:///{tmp_path / 'db.sqlite'}",
        store_url=f"memory://hub-{uuid.uuid4().hex}",
    )
    with Hub(settings) as hub:
        version = hub.push("acme/m", make_folder(tmp_path / "m", {"a": "1", "b/c": "2"}), "model")
        hub.pull(version.ref, tmp_path / "out")
        assert (tmp_path / "out/b/c").read_text() == "2"
        assert not (tmp_path / "blobs").exists()
