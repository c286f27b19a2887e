"""``RemoteHub``: the hub's interface (``fmstack.hub.api.HubApi``) over a hub server's HTTP API, so that
commands work the same against a remote hub as against the local one: the same entities back, the
same errors (``fmstack.errors``, mapped from the server's answers), the same bytes verified.

Transfers go through ``HubClient`` (only missing blobs travel, resumable); ``checkout`` keeps a
verified copy per version digest in ``FMSTACK_HOME/remote-cache``, evicting the least recently used
copies beyond ``CACHE_BYTES``. Runs are recorded on the server by the client doing the work, so a
version pushed with its ``run_id`` arrives with its lineage.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from datetime import datetime
from pathlib import Path
from typing import Any

from fmstack.errors import Conflict, IntegrityError, NotFound
from fmstack.hub.api import HubApi
from fmstack.hub.entities import (
    AliasEvent,
    FileInfo,
    Kind,
    Lineage,
    LineageNode,
    Metric,
    RepoInfo,
    RunInfo,
    RunStatus,
    VersionDetail,
    VersionInfo,
    to_jsonable,
)
from fmstack.hub.refs import parse_ref, parse_repo
from fmstack.hub.runs import failure_reason, sigterm_interrupts
from fmstack.server.client import HubClient
from fmstack.settings import Settings

CACHE_BYTES = 20 * 2**30  # verified checkouts kept in FMSTACK_HOME/remote-cache


def _when(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value)


def version_of(d: dict[str, Any]) -> VersionInfo:
    return VersionInfo(**{**d, "created_at": _when(d["created_at"])})


def repo_info_of(d: dict[str, Any]) -> RepoInfo:
    return RepoInfo(**{**d, "created_at": _when(d["created_at"])})


def detail_of(d: dict[str, Any]) -> VersionDetail:
    return VersionDetail(
        version=version_of(d["version"]),
        files=[FileInfo(**f) for f in d["files"]],
        aliases=list(d["aliases"]),
        card=d["card"],
        produced_by=d["produced_by"],
        inputs=list(d["inputs"]),
        used_by=list(d["used_by"]),
    )


def node_of(d: dict[str, Any]) -> LineageNode:
    return LineageNode(d["ref"], d["kind"], d["run_id"], d["run_kind"], [node_of(p) for p in d["parents"]])


def run_of(d: dict[str, Any]) -> RunInfo:
    return RunInfo(**{**d, "started_at": _when(d["started_at"]), "ended_at": _when(d["ended_at"])})


def _path(ref: str) -> str:
    """``/api/v1/repos/NS/NAME/versions/REV`` of a ref."""
    r = parse_ref(ref)
    rev = str(r.version) if r.version is not None else (r.alias or "latest")
    return f"/api/v1/repos/{r.namespace}/{r.name}/versions/{rev}"


class RemoteRuns:
    """Run records on the server, created and closed by the client doing the work."""

    def __init__(self, client: HubClient) -> None:
        self._client = client

    def start(
        self,
        kind: str,
        spec: dict[str, Any],
        inputs: Sequence[str] = (),
        device: str | None = None,
        started_at: datetime | None = None,
    ) -> int:
        body = {"kind": kind, "spec": to_jsonable(spec), "inputs": list(inputs), "device": device}
        body["started_at"] = started_at.isoformat() if started_at is not None else None
        return int(self._client.request("POST", "/api/v1/runs", json=body).json()["id"])

    @contextmanager
    def recorded(
        self, kind: str, spec: dict[str, Any], inputs: Sequence[str] = (), device: str | None = None
    ) -> Iterator[int]:
        """As the local run log's: failed with the reason when the block raises, else succeeded
        (unless the block closed the run itself)."""
        run_id = self.start(kind, spec, inputs, device)
        try:
            with sigterm_interrupts():
                yield run_id
        except BaseException as exc:
            reason = failure_reason(exc)
            with suppress(Exception):  # the work's own error is the one to report
                self.append_log(run_id, f"failed: {reason}")
                self.finish(run_id, "failed", spec_update={"error": reason})
            raise
        if self.get(run_id).status == "running":
            self.finish(run_id, "succeeded")

    def discard(self, run_id: int) -> None:
        self._client.request("DELETE", f"/api/v1/runs/{run_id}")

    def log_metrics(self, run_id: int, step: int, metrics: dict[str, float]) -> None:
        body = {"step": step, "metrics": {k: float(v) for k, v in metrics.items()}}
        self._client.request("POST", f"/api/v1/runs/{run_id}/metrics", json=body)

    def append_log(self, run_id: int, text: str) -> None:
        self._client.request("POST", f"/api/v1/runs/{run_id}/logs", json={"text": text})

    def finish(
        self, run_id: int, status: RunStatus = "succeeded", spec_update: dict[str, Any] | None = None
    ) -> None:
        body = {"status": status, "spec_update": to_jsonable(spec_update) if spec_update else None}
        self._client.request("POST", f"/api/v1/runs/{run_id}/finish", json=body)

    def get(self, run_id: int) -> RunInfo:
        return run_of(self._client.get_json(f"/api/v1/runs/{run_id}"))

    def recent(self, kind: str | None = None, limit: int = 50) -> list[RunInfo]:
        params: dict[str, Any] = {"limit": limit} | ({"kind": kind} if kind else {})
        return [run_of(r) for r in self._client.get_json("/api/v1/runs", **params)]

    def metrics(self, run_id: int, name: str | None = None) -> list[Metric]:
        params = {"name": name} if name else {}
        found = self._client.get_json(f"/api/v1/runs/{run_id}/metrics", **params)
        return [Metric(m["name"], m["step"], m["value"], _when(m["at"]) or datetime.min) for m in found]

    def logs(self, run_id: int) -> str:
        return str(self._client.get_json(f"/api/v1/runs/{run_id}/logs")["logs"])


class RemoteHub:
    def __init__(self, settings: Settings, client: HubClient) -> None:
        self._settings = settings
        self.client = client
        self._runs = RemoteRuns(client)

    @classmethod
    def connect(cls, settings: Settings, url: str, token: str | None) -> RemoteHub:
        return cls(settings, HubClient(url, token))

    # -- lifecycle and properties ----------------------------------------------------------------

    @property
    def settings(self) -> Settings:
        return self._settings

    @property
    def runs(self) -> RemoteRuns:
        return self._runs

    @property
    def read_only(self) -> bool:
        return False  # the server decides per request (403 for a read-only token)

    def check_writable(self, doing: str) -> None:
        return None

    def close(self) -> None:
        self.client.close()

    def __enter__(self) -> RemoteHub:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- versions --------------------------------------------------------------------------------

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
        answer = self.client.push(
            repo, path, kind, message=message, alias=alias, card=card, run_id=run_id, progress=progress
        )
        return version_of(answer)

    def check_repo_kind(self, repo: str, kind: Kind) -> None:
        target = parse_repo(repo)
        try:
            found = self.client.get_json(f"/api/v1/repos/{target.namespace}/{target.name}")
        except NotFound:
            return
        existing = found["repo"]["kind"]
        if existing != kind:
            raise Conflict(
                f"{target.repo} holds {existing} versions, so it cannot take {kind} versions: choose another repo name"
            )

    def pull(self, ref: str, dest: Path | str, progress: Callable[[int], None] | None = None) -> VersionInfo:
        return version_of(self.client.pull(ref, dest, progress)["version"])

    def checkout(self, ref: str) -> Path:
        """A verified copy of the version's files, cached by digest (pulled once, then reused)."""
        detail = self.info(ref)
        cache = self._settings.home / "remote-cache"
        folder = cache / detail.version.digest
        if folder.is_dir():
            os.utime(folder)  # most recently used
            return folder
        cache.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(dir=cache, prefix=".pull-"))
        try:
            self.client.pull(detail.version.ref, staging)
            os.replace(staging, folder)
        except OSError:
            if not folder.is_dir():  # another process won the race; theirs is as good
                raise
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        evict(cache, CACHE_BYTES, keep=folder)
        return folder

    def read_file(self, ref: str, path: str) -> bytes:
        detail = self.info(ref)
        match = next((f for f in detail.files if f.path == path), None)
        if match is None:
            raise NotFound(f"{detail.version.ref} has no file {path!r}")
        r = parse_ref(detail.version.repo)
        answer = self.client.request("GET", f"/api/v1/repos/{r.namespace}/{r.name}/blobs/{match.sha256}")
        if hashlib.sha256(answer.content).hexdigest() != match.sha256:
            raise IntegrityError(
                f"{detail.version.ref}/{path}: the bytes received do not match their sha256; try again"
            )
        return answer.content

    def resolve(self, ref: str) -> VersionInfo:
        return self.info(ref).version

    def info(self, ref: str) -> VersionDetail:
        return detail_of(self.client.get_json(_path(ref)))

    def ls(self, kind: Kind | None = None, namespace: str | None = None) -> list[RepoInfo]:
        params = {k: v for k, v in {"kind": kind, "namespace": namespace}.items() if v is not None}
        return [repo_info_of(r) for r in self.client.get_json("/api/v1/repos", **params)]

    def versions(self, repo: str) -> list[VersionInfo]:
        target = parse_repo(repo)
        found = self.client.get_json(f"/api/v1/repos/{target.namespace}/{target.name}")
        return [version_of(v) for v in found["versions"]]

    def rm(self, ref: str, *, force: bool = False) -> list[VersionInfo]:
        r = parse_ref(ref)
        if r.version is None and r.alias is None:
            removed = [self._rm_one(v.ref, force) for v in self.versions(r.repo)]
            return [v for group in removed for v in group]
        return self._rm_one(ref, force)

    def _rm_one(self, ref: str, force: bool) -> list[VersionInfo]:
        answer = self.client.request("DELETE", _path(ref), params={"force": force})
        return [version_of(v) for v in answer.json()]

    # -- aliases, cards, lineage -----------------------------------------------------------------

    def tag(self, ref: str, alias: str) -> VersionInfo:
        version = self.resolve(ref)
        r = parse_ref(version.repo)
        path = f"/api/v1/repos/{r.namespace}/{r.name}/aliases/{alias}"
        answer = self.client.request("PUT", path, json={"version": version.number})
        return version_of(answer.json())

    def untag(self, repo: str, alias: str) -> None:
        target = parse_repo(repo)
        self.client.request("DELETE", f"/api/v1/repos/{target.namespace}/{target.name}/aliases/{alias}")

    def alias_history(self, repo: str) -> list[AliasEvent]:
        target = parse_repo(repo)
        found = self.client.get_json(f"/api/v1/repos/{target.namespace}/{target.name}/aliases")
        return [
            AliasEvent(e["alias"], e["old"], e["new"], _when(e["at"]) or datetime.min, e["who"])
            for e in found
        ]

    def card(self, ref: str) -> str:
        return str(self.client.get_json(f"{_path(ref)}/card")["text"])

    def set_card(self, ref: str, text: str) -> VersionInfo:
        answer = self.client.request("PUT", f"{_path(ref)}/card", json={"text": text})
        return version_of(answer.json())

    def lineage(self, ref: str) -> Lineage:
        found = self.client.get_json(f"{_path(ref)}/lineage")
        upstream = found["upstream"]
        return Lineage(found["ref"], node_of(upstream), [node_of(d) for d in found["downstream"]])


# mypy checks here that the remote hub implements everything callers may use of a hub.
_REMOTE_HUB: Callable[[Settings, HubClient], HubApi] = RemoteHub


def evict(cache: Path, limit: int, keep: Path) -> None:
    """Remove the least recently used checkouts until the cache holds at most ``limit`` bytes."""
    folders = sorted((p for p in cache.iterdir() if p.is_dir() and not p.name.startswith(".")), key=_mtime)
    sizes = {p: _size(p) for p in folders}
    total = sum(sizes.values())
    for folder in folders:
        if total <= limit:
            return
        if folder != keep:
            shutil.rmtree(folder, ignore_errors=True)
            total -= sizes[folder]


def _mtime(path: Path) -> float:
    return path.stat().st_mtime


def _size(folder: Path) -> int:
    return sum(f.stat().st_size for f in _files(folder))


def _files(folder: Path) -> Iterator[Path]:
    return (p for p in folder.rglob("*") if p.is_file())
