"""The blob store on a real S3 server (SeaweedFS): large blobs go up in parts, verify streams, requests
that get throttled or a 5xx are retried with backoff, concurrent writers of one blob agree, and fsck
and gc see (and clean up) what killed uploads leave. The common store behaviour runs on S3 through the
parametrised fixtures of test_blobs.py and test_store.py."""

from __future__ import annotations

import hashlib
import http.client
import http.server
import os
import threading
import tracemalloc
from collections.abc import Iterator
from pathlib import Path

import pytest
import s3fs

from fmstack.hub import Hub
from fmstack.hub import blobs as blobs_module
from fmstack.hub.blobs import FsspecBlobStore
from fmstack.hub.maintenance import fsck, gc
from fmstack.settings import Settings
from tests.hub.folders import make_folder
from tests.seaweed import SeaweedS3

PART = 5 * 1024 * 1024  # the smallest part S3 accepts


def _s3_store(url: str) -> FsspecBlobStore:
    return FsspecBlobStore(url, part_size=PART)


def test_a_large_blob_goes_up_in_parts_and_streams_back_verified(s3_store_url: str, tmp_path: Path) -> None:
    store = _s3_store(s3_store_url)
    src = tmp_path / "big.bin"
    src.write_bytes(os.urandom(2 * PART + 12345))
    blob = store.put_file(src)
    assert blob.sha256 == hashlib.sha256(src.read_bytes()).hexdigest()
    info = store.fs.info(store._path(blob.sha256))
    assert info["size"] == src.stat().st_size
    assert str(info["ETag"]).strip('"').endswith("-3")  # a multipart ETag names its part count
    store.read_to(blob.sha256, tmp_path / "back.bin", "big.bin")
    assert (tmp_path / "back.bin").read_bytes() == src.read_bytes()
    assert store.leftovers() == []  # a completed upload leaves no parts behind


def test_verify_streams_instead_of_reading_the_blob_into_memory(s3_store_url: str, tmp_path: Path) -> None:
    block = 1024 * 1024
    store = FsspecBlobStore(s3_store_url, part_size=PART, block_size=block)
    src = tmp_path / "big.bin"
    src.write_bytes(os.urandom(16 * block))
    blob = store.put_file(src)
    tracemalloc.start()
    try:
        assert store.verify(blob.sha256)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # Reading it whole would hold it at least once (16 blocks); a streamed read holds a few blocks.
    assert peak < 5 * block, f"verify held {peak:,} bytes for a {16 * block:,}-byte blob"


def test_concurrent_writers_of_one_large_blob_leave_one_good_copy(s3_store_url: str, tmp_path: Path) -> None:
    src = tmp_path / "big.bin"
    src.write_bytes(os.urandom(2 * PART + 1))
    results, errors = [], []

    def put() -> None:
        try:
            results.append(_s3_store(s3_store_url).put_file(src))
        except Exception as exc:  # reported below, with the others
            errors.append(exc)

    threads = [threading.Thread(target=put) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert errors == [] and len(set(results)) == 1
    store = _s3_store(s3_store_url)
    assert list(store.list()) == [results[0].sha256] and store.verify(results[0].sha256)


class _FlakyS3(http.server.ThreadingHTTPServer):
    """Forwards requests to the real S3 server, but answers every third one with a 503 SlowDown (as S3
    does when throttling) or a 500, so that only a client that retries gets anywhere."""

    def __init__(self, target: str) -> None:
        super().__init__(("127.0.0.1", 0), _Forward)
        self.target = target.removeprefix("http://")
        self.count = 0
        self.failed = 0
        self.lock = threading.Lock()

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def should_fail(self) -> int:
        with self.lock:
            self.count += 1
            if self.count % 3 == 1:
                self.failed += 1
                return 503 if self.failed % 2 else 500
            return 0


class _Forward(http.server.BaseHTTPRequestHandler):
    server: _FlakyS3
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:
        pass

    def _handle(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else None
        status = self.server.should_fail()
        if status:
            code = "SlowDown" if status == 503 else "InternalError"
            payload = f"<Error><Code>{code}</Code><Message>try again</Message></Error>".encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/xml")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)
            return
        # The Host header is forwarded as signed: SeaweedFS checks the signature against it.
        conn = http.client.HTTPConnection(self.server.target, timeout=60)
        conn.request(self.command, self.path, body=body, headers=dict(self.headers.items()))
        answer = conn.getresponse()
        data = answer.read()
        self.send_response(answer.status)
        for key, value in answer.getheaders():
            if key.lower() not in ("transfer-encoding", "connection", "content-length"):
                self.send_header(key, value)
        # A HEAD answer has no body but names the object's length: pass that on as it came.
        length = answer.getheader("Content-Length") if self.command == "HEAD" else None
        self.send_header("Content-Length", length or str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)
        conn.close()

    do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _handle


@pytest.fixture
def flaky_s3(seaweed: SeaweedS3, s3_store_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[_FlakyS3]:
    proxy = _FlakyS3(seaweed.endpoint)
    thread = threading.Thread(target=proxy.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setenv("AWS_ENDPOINT_URL", proxy.endpoint)
    s3fs.S3FileSystem.clear_instance_cache()  # fsspec reuses clients made for the same arguments
    try:
        yield proxy
    finally:
        s3fs.S3FileSystem.clear_instance_cache()
        proxy.shutdown()
        proxy.server_close()


def test_throttling_and_server_errors_are_retried(
    flaky_s3: _FlakyS3, s3_store_url: str, tmp_path: Path
) -> None:
    settings = Settings(
        home=tmp_path / "home", database_url=f"sqlite:///{tmp_path / 'db'}", store_url=s3_store_url
    )
    folder = make_folder(tmp_path / "m", {"config.json": "{}", "w.bin": os.urandom(3 * 1024 * 1024)})
    with Hub(settings) as hub:
        version = hub.push("acme/m", folder, "model")
        hub.pull(version.ref, tmp_path / "out")
        assert fsck(hub).ok
    assert (tmp_path / "out/w.bin").read_bytes() == (folder / "w.bin").read_bytes()
    assert flaky_s3.failed >= 3  # every third request failed, and the work still completed


def test_fsck_and_gc_on_s3(s3_store_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = Settings(
        home=tmp_path / "home", database_url=f"sqlite:///{tmp_path / 'db'}", store_url=s3_store_url
    )
    with Hub(settings) as hub:
        version = hub.push("acme/m", make_folder(tmp_path / "m", {"a.bin": "aaa", "b.bin": "bbb"}), "model")
        files = {f.path: f.sha256 for f in hub.info(version.ref).files}
        store = hub.blobs
        assert isinstance(store, FsspecBlobStore)
        store.fs.pipe_file(store._path(files["b.bin"]), b"not bbb")  # bit rot
        orphan = tmp_path / "orphan.bin"
        orphan.write_bytes(b"nobody's")
        orphan_sha = store.put_file(orphan).sha256
        # What a push killed mid-upload leaves: a multipart upload never completed.
        bucket, _, key = store._path("ab" * 32).partition("/")
        started = store.fs.call_s3("create_multipart_upload", Bucket=bucket, Key=key)
        store.fs.call_s3(
            "upload_part", Bucket=bucket, Key=key, UploadId=started["UploadId"], PartNumber=1, Body=b"x" * 100
        )

        report = fsck(hub)
        assert report.corrupt == [f"acme/m:1 b.bin sha256:{files['b.bin']}"] and not report.missing
        assert report.orphans == [orphan_sha]
        uploads = [left for left in report.leftovers if left.what == "unfinished upload"]
        assert len(uploads) == 1 and uploads[0].live and started["UploadId"] in uploads[0].path

        kept = gc(hub)  # a young upload may be a push still running somewhere: kept
        assert kept.removed == [orphan_sha] and not store.has(orphan_sha)
        assert len(store.leftovers()) == 1

        monkeypatch.setattr(blobs_module, "UPLOAD_GRACE_S", 0)
        assert gc(hub).temp_files_removed == 1
        assert store.leftovers() == []
