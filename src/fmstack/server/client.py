"""An HTTP client of the hub server's native API: push a folder (only the blobs the server lacks, in
chunks, resuming after a broken connection) and pull a version (only files not already present,
resuming with ``Range``, every sha256 verified before a file is visible).

HTTP errors come back as the ``fmstack.errors`` the server raised (by the ``error`` field of its JSON
body), so callers handle a remote hub's problems like a local one's.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx

from fmstack import errors
from fmstack.hub.blobs import partial_path
from fmstack.hub.entities import Kind
from fmstack.hub.manifest import ManifestEntry, check_relative_path, collect_files
from fmstack.hub.refs import parse_ref, parse_repo

CHUNK_BYTES = 16 * 2**20  # one upload request; a broken one costs at most this much again
READ_BYTES = 2**20
RETRIES = 5
_ERRORS: dict[str, type[errors.FmstackError]] = {
    "InvalidInput": errors.InvalidInput,
    "UploadTooLarge": errors.InvalidInput,
    "NotFound": errors.NotFound,
    "Conflict": errors.Conflict,
    "OffsetMismatch": errors.Conflict,
    "Unsupported": errors.Unsupported,
    "Unavailable": errors.Unavailable,
    "Unauthorized": errors.Unauthorized,
    "Forbidden": errors.Forbidden,
    "IntegrityError": errors.IntegrityError,
}


def error_of(response: httpx.Response) -> errors.FmstackError:
    """The fmstack error a failed answer stands for."""
    try:
        body = response.json()
        kind, message = str(body["error"]), str(body["message"])
    except (ValueError, KeyError, TypeError):
        kind, message = "", f"HTTP {response.status_code} from {response.request.url}: {response.text[:200]}"
    if response.status_code == 401:
        message += "; log in again with `fmstack login URL`"
    return _ERRORS.get(kind, errors.Unavailable)(message)


def _checked(response: httpx.Response) -> httpx.Response:
    if response.status_code >= 400:
        raise error_of(response)
    return response


def _sha256(path: Path) -> str:
    with open(path, "rb") as fin:
        return hashlib.file_digest(fin, "sha256").hexdigest()


class HubClient:
    def __init__(self, url: str, token: str | None = None, *, http: httpx.Client | None = None) -> None:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.url = url.rstrip("/")
        self.http = http or httpx.Client(base_url=self.url, timeout=httpx.Timeout(60.0, connect=10.0))
        self.http.headers.update(headers)
        self.bytes_sent = 0  # of blob bodies, for measuring what a push uploaded

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> HubClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def request(self, method: str, path: str, **options: Any) -> httpx.Response:
        """One request whose failure is an fmstack error: the server's own, or ``Unavailable`` when
        it cannot be reached."""
        try:
            return _checked(self.http.request(method, path, **options))
        except httpx.TransportError as exc:
            raise errors.Unavailable(
                f"cannot reach the hub server {self.url} ({type(exc).__name__}: {exc}); check the URL "
                "(FMSTACK_HUB_URL / --hub) and that the server is running"
            ) from None

    def _get(self, path: str, **params: Any) -> Any:
        return self.request("GET", path, params=params).json()

    def get_json(self, path: str, **params: Any) -> Any:
        """The JSON answer of a GET; a failed one raises its fmstack error."""
        return self._get(path, **params)

    def whoami(self) -> dict[str, Any]:
        answer: dict[str, Any] = self._get("/api/v1/whoami")
        return answer

    def info(self, ref: str) -> dict[str, Any]:
        r = parse_ref(ref)
        rev = str(r.version) if r.version is not None else (r.alias or "latest")
        answer: dict[str, Any] = self._get(f"/api/v1/repos/{r.namespace}/{r.name}/versions/{rev}")
        return answer

    # -- push ------------------------------------------------------------------------------------

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
    ) -> dict[str, Any]:
        """Push a folder (or one file) as a new version; returns the version as the server reports it."""
        target = parse_repo(repo)
        files = collect_files(Path(path))
        entries = [ManifestEntry(rel, _sha256(p), p.stat().st_size) for rel, p in files]
        by_sha = {e.sha256: p for e, (_, p) in zip(entries, files, strict=True)}
        manifest = {
            "kind": kind,
            "files": [{"path": e.path, "sha256": e.sha256, "size": e.size} for e in entries],
            "message": message,
            "alias": alias,
            "card": card,
            "run_id": run_id,
        }
        base = f"/api/v1/repos/{target.namespace}/{target.name}"
        plan = self.request("POST", f"{base}/push/plan", json=manifest).json()
        for blob in plan["missing"]:
            self._upload(by_sha[blob["sha256"]], blob["sha256"], blob["size"], blob["received"], progress)
        answer: dict[str, Any] = self.request("POST", f"{base}/versions", json=manifest).json()
        return answer

    def _upload(
        self, path: Path, sha: str, size: int, offset: int, progress: Callable[[int], None] | None
    ) -> None:
        failures = 0
        while True:
            try:
                state = self._send_chunks(path, sha, size, offset, progress)
            except httpx.TransportError:  # a broken connection, a restarted server: ask where to resume
                failures += 1
                if failures > RETRIES:
                    raise errors.Unavailable(
                        f"cannot reach {self.url} to upload {path.name}; try again later"
                    ) from None
                time.sleep(min(2**failures * 0.25, 5))
                state = self._state(sha, size)
            if state["complete"]:
                return
            offset = state["received"]

    def _state(self, sha: str, size: int) -> dict[str, Any]:
        for attempt in range(RETRIES):
            try:
                answer: dict[str, Any] = self._get(f"/api/v1/uploads/{sha}", size=size)
                return answer
            except httpx.TransportError:
                time.sleep(min(2**attempt * 0.5, 5))
        raise errors.Unavailable(f"cannot reach {self.url}; try the push again later (it resumes)")

    def _send_chunks(
        self, path: Path, sha: str, size: int, offset: int, progress: Callable[[int], None] | None
    ) -> dict[str, Any]:
        state: dict[str, Any] = {"complete": False, "received": offset}
        with open(path, "rb") as fin:
            while True:
                fin.seek(offset)
                chunk = fin.read(CHUNK_BYTES)
                answer = self.http.put(
                    f"/api/v1/uploads/{sha}", params={"size": size, "offset": offset}, content=chunk
                )
                if answer.status_code == 409:  # another offset is held: resume from there
                    return self._state(sha, size)
                state = _checked(answer).json()
                self.bytes_sent += len(chunk)
                if progress is not None:
                    progress(len(chunk))
                if state["complete"] or not chunk:
                    return state
                offset = state["received"]

    # -- pull ------------------------------------------------------------------------------------

    def pull(
        self, ref: str, dest: Path | str, progress: Callable[[int], None] | None = None
    ) -> dict[str, Any]:
        """Write a version's files under ``dest``: files already there with the right sha256 are kept,
        the others are downloaded (resuming a partial file with ``Range``) and verified."""
        detail = self.info(ref)
        version = detail["version"]
        r = parse_ref(version["repo"])
        dest = Path(dest)
        for f in detail["files"]:
            target = dest / check_relative_path(f["path"])
            if target.is_file() and target.stat().st_size == f["size"] and _sha256(target) == f["sha256"]:
                continue
            self._download(r.namespace, r.name, f["sha256"], f["size"], target, progress)
        return detail

    def _download(
        self,
        namespace: str,
        name: str,
        sha: str,
        size: int,
        target: Path,
        progress: Callable[[int], None] | None,
    ) -> None:
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = partial_path(target)
        for attempt in range(RETRIES + 1):
            try:
                self._fetch_into(f"/api/v1/repos/{namespace}/{name}/blobs/{sha}", partial, progress)
                break
            except httpx.TransportError:
                if attempt == RETRIES:
                    raise errors.Unavailable(
                        f"cannot reach {self.url} to download {target.name}; pull again (it resumes)"
                    ) from None
                time.sleep(min(2**attempt * 0.25, 5))
        actual = _sha256(partial)
        if actual != sha:
            partial.unlink(missing_ok=True)
            raise errors.IntegrityError(
                f"{target.name}: downloaded bytes hash to {actual}, not {sha}; pull again"
            )
        os.replace(partial, target)

    def _fetch_into(self, url: str, partial: Path, progress: Callable[[int], None] | None) -> None:
        have = partial.stat().st_size if partial.exists() else 0
        headers = {"Range": f"bytes={have}-"} if have else {}
        with self.http.stream("GET", url, headers=headers) as answer:
            if answer.status_code == 416:  # already whole
                return
            if answer.status_code >= 400:
                answer.read()
                raise error_of(answer)
            mode = "ab" if answer.status_code == 206 else "wb"
            with open(partial, mode) as out:
                for chunk in _iter(answer):
                    out.write(chunk)
                    if progress is not None:
                        progress(len(chunk))


def _iter(answer: httpx.Response) -> Iterator[bytes]:
    yield from answer.iter_bytes(READ_BYTES)
