"""Fetching a channel's bundle through python-tuf's ``ngclient``: every check TUF defines, nothing new.

ngclient walks the root chain (key rotation), refuses metadata that is unsigned by the keys the
trusted root names, expired, or older than what this device already trusted (rollback and freeze
attacks: the trusted versions are kept in ``DIR/tuf``), and downloads each target up to the length
the signed metadata names, checking its sha256. Our part is the transport (a bearer token for private
channels, timeouts) and the layout of a channel on the hub server.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import urllib3
from tuf.api import exceptions
from tuf.ngclient import Updater, UpdaterConfig
from tuf.ngclient.fetcher import FetcherInterface

from fmstack_edge.bundle import MANIFEST, Manifest, parse_manifest
from fmstack_edge.errors import UpdateRejected


def channel_url(server: str, channel: str) -> str:
    return f"{server.rstrip('/')}/api/v1/edge/channels/{channel}"


class Fetcher(FetcherInterface):
    """urllib3 with a bearer token (the hub server's read token, when the channel is private) and a
    timeout on connecting and between bytes: a stalled server is a ``SlowRetrievalError``."""

    def __init__(self, token: str | None, timeout_s: float) -> None:
        headers = {"User-Agent": "fmstack-edge"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        self._pool = urllib3.PoolManager(headers=headers, retries=False)
        self._timeout = urllib3.Timeout(connect=timeout_s, read=timeout_s)

    def _fetch(self, url: str) -> Iterator[bytes]:
        try:
            response = self._pool.request("GET", url, preload_content=False, timeout=self._timeout)
        except urllib3.exceptions.TimeoutError as exc:
            raise exceptions.SlowRetrievalError from exc
        if response.status >= 400:
            response.close()
            raise exceptions.DownloadHTTPError(f"HTTP {response.status} for {url}", response.status)
        return self._chunks(response)

    @staticmethod
    def _chunks(response: urllib3.BaseHTTPResponse) -> Iterator[bytes]:
        try:
            yield from response.stream(256 * 1024)
        except urllib3.exceptions.TimeoutError as exc:
            raise exceptions.SlowRetrievalError from exc
        finally:
            response.release_conn()


class ChannelClient:
    """One channel of one hub server, trusted from ``DIR/tuf`` (seeded once from the root file the
    device was provisioned with)."""

    def __init__(
        self,
        server: str,
        channel: str,
        tuf_dir: Path,
        staging: Path,
        root: Path | None,
        token: str | None = None,
        timeout_s: float = 30.0,
    ) -> None:
        tuf_dir.mkdir(parents=True, exist_ok=True)
        staging.mkdir(parents=True, exist_ok=True)
        self._base = channel_url(server, channel)
        self._tuf_dir = tuf_dir
        self._staging = staging
        self._fetcher = Fetcher(token, timeout_s)
        trusted = tuf_dir / "root.json"
        if not trusted.is_file():
            if root is None:
                raise UpdateRejected(
                    f"{tuf_dir} holds no trusted root yet: pass --root ROOT.json, the 1.root.json that "
                    "`fmstack edge keys init` wrote (provision it with the device, never fetch it)"
                )
            self._bootstrap: bytes | None = root.read_bytes()
        else:
            self._bootstrap = None  # the root this device already verified, possibly rotated since

    def _updater(self) -> Updater:
        # Metadata files are small; the bounds keep an endless or oversized answer from filling memory.
        config = UpdaterConfig(
            root_max_length=256_000, timestamp_max_length=16_384, snapshot_max_length=256_000
        )
        updater = Updater(
            metadata_dir=str(self._tuf_dir),
            metadata_base_url=f"{self._base}/metadata/",
            target_dir=str(self._staging),
            target_base_url=f"{self._base}/targets/",
            fetcher=self._fetcher,
            config=config,
            bootstrap=self._bootstrap,
        )
        self._bootstrap = None
        return updater

    def latest(self) -> tuple[Updater, Manifest]:
        """Refresh the signed metadata and read the channel's current ``bundle.json``."""
        updater = self._updater()
        updater.refresh()
        info = updater.get_targetinfo(MANIFEST)
        if info is None:
            raise UpdateRejected("the channel's signed targets name no bundle.json (nothing published?)")
        path = updater.download_target(info, str(self._staging / MANIFEST))
        return updater, parse_manifest(Path(path).read_bytes())

    @staticmethod
    def download(updater: Updater, manifest: Manifest, folder: Path, max_bytes: int) -> int:
        """Every file of the bundle into ``folder``, each verified against the same signed targets
        metadata as bundle.json (no mixing of two bundles' files); the bytes downloaded."""
        infos = {}
        for name, target in manifest.files.items():
            info = updater.get_targetinfo(target)
            if info is None:
                raise UpdateRejected(f"bundle.json lists {target}, which the signed targets do not name")
            infos[name] = info
        total = sum(i.length for i in infos.values())
        if total > max_bytes:
            raise UpdateRejected(
                f"bundle {manifest.version} is {total:,} bytes; this device takes at most {max_bytes:,}"
            )
        for name, info in infos.items():
            updater.download_target(info, str(folder / name))
        return total


def describe(exc: BaseException) -> str:
    """A log line's worth of what went wrong with an update, naming the attack TUF caught."""
    kinds = {
        exceptions.UnsignedMetadataError: "metadata not signed by the trusted keys (tampered or a wrong key)",
        exceptions.ExpiredMetadataError: "metadata expired (a freeze attack, or the publisher must re-sign)",
        exceptions.BadVersionNumberError: "metadata older than what this device trusts (a replay)",
        exceptions.LengthOrHashMismatchError: "a file does not match its signed hash or size (tampered)",
        exceptions.DownloadLengthMismatchError: "a download longer than its signed size (endless or oversized)",
        exceptions.SlowRetrievalError: "the server stalled",
        exceptions.DownloadHTTPError: "the server answered an error",
    }
    for kind, what in kinds.items():
        if isinstance(exc, kind):
            return f"{what}: {type(exc).__name__}: {exc}"
    if isinstance(exc, json.JSONDecodeError | exceptions.RepositoryError):
        return f"malformed metadata: {type(exc).__name__}: {exc}"
    return f"{type(exc).__name__}: {exc}"
