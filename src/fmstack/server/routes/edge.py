"""Edge channels over HTTP: what devices fetch (TUF metadata and targets, in the layout python-tuf's
ngclient expects), where they report, and how publishers publish.

    GET  /api/v1/edge/channels/{channel}                        versions, bundle history (readers)
    POST /api/v1/edge/channels/{channel}/publish                a signed publish (writers of its namespace)
    GET  /api/v1/edge/channels/{channel}/metadata/{file}        timestamp.json, N.root.json, N.snapshot.json, N.targets.json
    GET  /api/v1/edge/channels/{channel}/targets/{path}         bundles/N/<sha256>.<name>, <sha256>.bundle.json
    POST /api/v1/edge/channels/{channel}/devices/{device_id}    a device's report (readers)
    GET  /api/v1/edge/channels/{channel}/devices                the fleet (writers of its namespace)

Reading a channel needs read access to the repo of its current bundle (anyone, for a public one);
publishing needs write access to the bundle's repo, in the namespace that owns the channel. The server
checks each publish as a device would (``fmstack.edge.verify``) before storing it, so a wrong key or a
stale version is refused here instead of on every device.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import json
import re
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Request
from fastapi.responses import Response, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field

from fmstack.edge.bundle import CHANNEL_PATTERN, MANIFEST, pin_alias
from fmstack.edge.verify import LARGEST_VERSION, check_update
from fmstack.errors import Conflict, Forbidden, InvalidInput, NotFound, Unauthorized, clip
from fmstack.hub import Hub
from fmstack.hub.refs import parse_ref
from fmstack.server.access import Principal, principal, require_read, require_write
from fmstack.server.accounts import Accounts
from fmstack.server.edge.store import BundleRecord, Channel, DeviceReport, EdgeStore, Publish

router = APIRouter(prefix="/api/v1/edge/channels")
Caller = Annotated[Principal, Depends(principal)]
ChannelName = Annotated[str, Path(pattern=CHANNEL_PATTERN)]
DeviceId = Annotated[str, Path(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")]
_METADATA = re.compile(
    r"^(?:(?P<version>[1-9][0-9]{0,17})\.(?P<role>root|snapshot|targets)|(?P<ts>timestamp))\.json$"
)
_TARGET = re.compile(r"^(?P<sha>[0-9a-f]{64})\.[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
MAX_INLINE_BYTES = 4 * 2**20  # a generated file (manifest, golden outputs); models stay hub blobs


class PublishBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    roots: list[str] = Field(
        default_factory=list, max_length=64, description="Base64 root versions the channel lacks."
    )
    targets: str = Field(description="Base64 signed targets metadata.")
    snapshot: str
    timestamp: str
    files: dict[str, str] = Field(
        default_factory=dict, max_length=16, description="sha256 -> base64 bytes of generated targets."
    )


class ReportBody(BaseModel):
    model_config = ConfigDict(extra="ignore")  # newer agents may say more
    version: int | None = Field(None, ge=0, le=LARGEST_VERSION)
    ref: str | None = Field(None, max_length=300)
    health: Literal["ok", "rejected", "offline", "empty", "rolled-back"] = "ok"
    last_error: str | None = Field(None, max_length=4000)
    slot: Literal["a", "b"] | None = None


def _store(request: Request) -> EdgeStore:
    hub: Hub = request.app.state.hub
    return EdgeStore(hub.engine)  # a sessionmaker over the hub's engine: nothing to keep between requests


def _readable(request: Request, caller: Principal, name: str) -> Channel:
    channel = _store(request).channel(name)
    hub: Hub = request.app.state.hub
    if channel is None:
        raise NotFound(f"no edge channel {name!r} on this server")
    try:
        require_read(hub, caller, channel.repo)
    except NotFound:  # a channel the caller may not read answers like a missing one
        raise NotFound(f"no edge channel {name!r} on this server") from None
    return channel


def _decode(text: str, what: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidInput(f"{what} is not base64") from None


@router.get("/{channel}")
def channel_info(request: Request, caller: Caller, channel: ChannelName) -> dict[str, Any]:
    found = _readable(request, caller, channel)
    store = _store(request)
    versions = store.versions(found)
    return {
        "name": found.name,
        "namespace": found.namespace,
        "repo": found.repo,
        "versions": versions.__dict__,
        "bundles": [_bundle_json(b) for b in store.bundles(found)],
    }


def _bundle_json(b: BundleRecord) -> dict[str, Any]:
    return {
        "version": b.version,
        "ref": b.ref,
        "rollout": b.rollout,
        "published_by": b.published_by,
        "published_at": b.published_at.isoformat(),
    }


@router.post("/{channel}/publish")
def publish(request: Request, caller: Caller, channel: ChannelName, body: PublishBody) -> dict[str, Any]:
    hub: Hub = request.app.state.hub
    store = _store(request)
    existing = store.channel(channel)
    if existing is not None:  # who may publish comes first: nothing about the upload is looked at before
        require_write(hub, caller, existing.repo)
    elif caller.user is None:
        raise Unauthorized("publishing needs a token: pass Authorization: Bearer <token> (`fmstack login`)")
    current = store.versions(existing)
    trusted = None if existing is None else store.metadata(existing, "root", current.root)
    roots = [_decode(r, f"root {i + 1}") for i, r in enumerate(body.roots)]
    signed = [_decode(getattr(body, role), role) for role in ("targets", "snapshot", "timestamp")]
    update = check_update(trusted, current, roots, *signed)
    uploaded = {sha: _decode(data, f"file {clip(sha)}") for sha, data in body.files.items()}
    if existing is not None:  # generated files the channel holds already need not travel again (refresh)
        for sha, _size in update.files().values():
            stored = None if sha in uploaded else store.target(existing, sha)
            if stored is not None and stored[1] is not None:
                uploaded[sha] = stored[1]
    manifest = _manifest(update.files(), uploaded)
    ref = parse_ref(str(manifest.get("ref", "")))
    require_write(hub, caller, ref.repo)
    require_read(hub, caller, ref.repo)
    if existing is not None and existing.namespace != ref.namespace:
        raise Forbidden(
            f"channel {channel!r} belongs to namespace {existing.namespace!r}; publish {existing.namespace}/... "
            f"versions to it, or choose another channel name for {ref.namespace!r}"
        )
    if manifest.get("channel") != channel:
        raise InvalidInput(f"bundle.json names channel {clip(manifest.get('channel'))!r}, not {channel!r}")
    version_files = {f.sha256: f.size for f in hub.info(str(manifest["ref"])).files}
    files = _target_files(update.files(), uploaded, version_files, str(manifest["ref"]))
    last = store.bundles(existing, 1) if existing is not None else []
    bundle = BundleRecord(
        int(manifest["version"]),
        str(manifest["ref"]),
        int(manifest["rollout"]),
        caller.name,
        datetime.now(UTC),
    )
    # The current bundle signed again (new expiry, same bundle.json): a refresh, no new bundle.
    refresh = bool(last) and bundle.version == last[0].version and bundle.ref == last[0].ref
    if last and bundle.version <= last[0].version and not refresh:
        raise InvalidInput(
            f"bundle version {bundle.version}: the channel is at bundle {last[0].version} already"
        )
    targets, snapshot, timestamp = signed
    record = Publish(update, roots, targets, snapshot, timestamp, files, None if refresh else bundle)
    if not refresh:  # pinned before it is published: a crash between leaves a pin, never a bare version
        _pin(hub, channel, bundle.ref, last[0].ref if last else None)
    try:
        store.publish(channel, ref.namespace, ref.repo, caller.name, record)
    except Conflict:  # another publish got there first: the pin follows what the channel serves
        serving = store.channel(channel)
        if not refresh and serving is not None and (now := store.bundles(serving, 1)):
            _pin(hub, channel, now[0].ref, bundle.ref)
        raise
    shown = last[0] if refresh else bundle
    accounts: Accounts = request.app.state.accounts
    source = request.client.host if request.client else ""
    action = "edge-refresh" if refresh else "edge-publish"
    accounts.audit(caller, action, f"edge channel {channel}", _bundle_json(shown), source)
    return {
        "channel": channel,
        "refreshed": refresh,
        "bundle": _bundle_json(shown),
        "versions": store.versions(store.get(channel)).__dict__,
    }


def _pin(hub: Hub, channel: str, ref: str, previous: str | None) -> None:
    """Point the channel's pin alias at the version it now serves (its files are what devices
    download: ``hub rm`` refuses a version an alias points at, so ``gc`` keeps them), and take it
    off the previous bundle's repo when the channel moved to another repo."""
    alias = pin_alias(channel)
    hub.tag(ref, alias)
    if previous is not None and parse_ref(previous).repo != parse_ref(ref).repo:
        with contextlib.suppress(NotFound):  # the old repo, or its alias, was removed since
            hub.untag(parse_ref(previous).repo, alias)


def _manifest(targets: dict[str, tuple[str, int]], uploaded: dict[str, bytes]) -> dict[str, Any]:
    """The signed bundle.json of the publish (uploaded with it, checked against its signed hash)."""
    if MANIFEST not in targets:
        raise InvalidInput(f"the signed targets name no {MANIFEST}: publish with `fmstack edge publish`")
    sha, _size = targets[MANIFEST]
    data = uploaded.get(sha)
    if data is None:
        raise InvalidInput(f"{MANIFEST} (sha256 {sha}) was not uploaded with the publish")
    try:
        manifest: dict[str, Any] = json.loads(data)
        version, rollout = int(manifest["version"]), int(manifest["rollout"])
    except (ValueError, KeyError, TypeError):
        raise InvalidInput(f"{MANIFEST} is not a bundle manifest") from None
    if not (1 <= version <= LARGEST_VERSION and 0 <= rollout <= 100):
        raise InvalidInput(f"{MANIFEST}: bundle version {version} or rollout {rollout}% out of range")
    return manifest


def _target_files(
    targets: dict[str, tuple[str, int]], uploaded: dict[str, bytes], version_files: dict[str, int], ref: str
) -> dict[str, tuple[int, bytes | None]]:
    """sha256 -> (size, inline bytes or None) of every target: an uploaded generated file (whose bytes
    match), or a file of the bundle's hub version (served from the hub's blobs)."""
    files: dict[str, tuple[int, bytes | None]] = {}
    for path, (sha, size) in targets.items():
        data = uploaded.get(sha)
        if data is not None:
            if hashlib.sha256(data).hexdigest() != sha or len(data) != size or size > MAX_INLINE_BYTES:
                raise InvalidInput(
                    f"target {clip(path)}: the uploaded bytes do not match its signed sha256 and size"
                )
            files[sha] = (size, data)
        elif version_files.get(sha) == size:
            files[sha] = (size, None)
        else:
            raise InvalidInput(
                f"target {clip(path)} (sha256 {sha}) is neither a file of {ref} nor uploaded with the publish"
            )
    return files


@router.get("/{channel}/metadata/{filename}")
def metadata(request: Request, caller: Caller, channel: ChannelName, filename: str) -> Response:
    found = _readable(request, caller, channel)
    match = _METADATA.match(filename)
    body = None
    if match is not None:
        role = match["role"] or "timestamp"
        body = _store(request).metadata(found, role, int(match["version"]) if match["version"] else None)
    if body is None:
        raise NotFound(f"channel {channel!r} has no metadata {clip(filename)!r}")
    return Response(body, media_type="application/json", headers={"Cache-Control": "no-store"})


@router.get("/{channel}/targets/{path:path}")
def target(request: Request, caller: Caller, channel: ChannelName, path: str) -> Response:
    found = _readable(request, caller, channel)
    match = _TARGET.match(path.rsplit("/", 1)[-1])
    stored = None if match is None else _store(request).target(found, match["sha"])
    if match is None or stored is None:
        raise NotFound(f"channel {channel!r} has no target {clip(path)!r}")
    size, body = stored
    if body is not None:
        return Response(body, media_type="application/octet-stream")
    hub: Hub = request.app.state.hub
    stream = hub.blobs.open(match["sha"], path)
    return StreamingResponse(
        _chunks(stream), media_type="application/octet-stream", headers={"Content-Length": str(size)}
    )


def _chunks(stream: Any) -> Any:
    with stream:
        while chunk := stream.read(2**20):
            yield chunk


@router.post("/{channel}/devices/{device_id}")
def report(
    request: Request, caller: Caller, channel: ChannelName, device_id: DeviceId, body: ReportBody
) -> dict[str, str]:
    found = _readable(request, caller, channel)
    address = request.client.host if request.client else ""
    record = DeviceReport(
        device_id, body.version, body.ref, body.health, body.last_error, address[:64], datetime.now(UTC)
    )
    _store(request).report(found, device_id, record)
    return {"recorded": device_id}


@router.get("/{channel}/devices")
def devices(request: Request, caller: Caller, channel: ChannelName) -> list[dict[str, Any]]:
    found = _readable(request, caller, channel)
    require_write(request.app.state.hub, caller, found.repo)
    return [{**r.__dict__, "reported_at": r.reported_at.isoformat()} for r in _store(request).devices(found)]
