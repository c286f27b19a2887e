"""The native transfer API: content-addressed, resumable pushes and pulls, and the writes that move
aliases or remove versions. Every write is recorded in the audit log.

Push: ``POST .../push/plan`` with the manifest answers which blobs the server lacks (and how much of
each already arrived); the client ``PUT``s only those to ``/api/v1/uploads/{sha256}`` in chunks at
an offset; the server verifies each blob's sha256 before storing it; ``POST .../versions`` with the
same manifest commits the version atomically. Pull: ``GET .../blobs/{sha256}`` (``Range`` -> 206)
for each file of a version the caller may read.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated, Any

import anyio.to_thread
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response, StreamingResponse
from pydantic import BaseModel, Field

from fmstack.errors import Forbidden, NotFound, Unauthorized
from fmstack.hub import Hub
from fmstack.hub.entities import to_jsonable
from fmstack.server import commits
from fmstack.server.access import Principal, principal, require_read, require_write
from fmstack.server.accounts import Accounts
from fmstack.server.claims import claimable, record_claim
from fmstack.server.hf_files import RangeNotSatisfiable, parse_range, stream
from fmstack.server.manifests import PushManifest, checked_entries
from fmstack.server.paths import LARGEST_NUMBER, ref_of, repo_of, sha256_of
from fmstack.server.routes.runs import owned_run
from fmstack.server.uploads import Uploads
from fmstack.server.visibility import repo_holds_blob

router = APIRouter(prefix="/api/v1")
Caller = Annotated[Principal, Depends(principal)]


class BlobState(BaseModel):
    sha256: str
    size: int
    received: int
    complete: bool


class PushPlan(BaseModel):
    missing: list[BlobState]


class AliasBody(BaseModel):
    version: int = Field(ge=1, le=LARGEST_NUMBER)


def _hub(request: Request) -> Hub:
    hub: Hub = request.app.state.hub
    return hub


def _accounts(request: Request) -> Accounts:
    accounts: Accounts = request.app.state.accounts
    return accounts


def _uploads(request: Request) -> Uploads:
    uploads: Uploads = request.app.state.uploads
    return uploads


def _source(request: Request) -> str:
    return request.client.host if request.client else ""


def _may_upload(caller: Principal) -> None:
    if caller.user is None:
        raise Unauthorized("uploading needs a token: pass Authorization: Bearer <token> (`fmstack login`)")
    if "write" not in caller.scopes:
        raise Forbidden(f"token {caller.token_prefix} has no write scope, so it cannot upload")


@router.post("/repos/{namespace}/{name}/push/plan")
def push_plan(
    request: Request, caller: Caller, namespace: str, name: str, manifest: PushManifest
) -> PushPlan:
    hub, repo = _hub(request), repo_of(namespace, name)
    require_write(hub, caller, repo)
    entries = checked_entries(manifest)
    uploads = _uploads(request)
    for e in entries:
        uploads.check_size(e.size)
    hub.check_repo_kind(repo, manifest.kind)
    sizes = {e.sha256: e.size for e in entries}
    owned = claimable(hub, caller, set(sizes))
    user = caller.name
    states = (
        uploads.state(sha, sizes[sha], False, user) for sha in commits.missing_blobs(hub, entries, owned)
    )
    return PushPlan(missing=[BlobState(**vars(s)) for s in states])


@router.get("/uploads/{sha256}")
def upload_state(
    request: Request, caller: Caller, sha256: str, size: Annotated[int, Query(ge=0, le=LARGEST_NUMBER)]
) -> BlobState:
    _may_upload(caller)
    sha = sha256_of(sha256)
    owned = sha in claimable(_hub(request), caller, {sha})
    return BlobState(**vars(_uploads(request).state(sha, size, owned, caller.name)))


@router.put("/uploads/{sha256}")
async def upload(
    request: Request,
    caller: Caller,
    sha256: str,
    size: Annotated[int, Query(ge=0, le=LARGEST_NUMBER)],
    offset: Annotated[int, Query(ge=0, le=LARGEST_NUMBER)] = 0,
) -> BlobState:
    """Append the body at ``offset``; the answer says how much arrived and whether the blob is stored."""
    _may_upload(caller)
    uploads = _uploads(request)
    uploads.check_size(size)
    sha, hub = sha256_of(sha256), _hub(request)
    owned = sha in await anyio.to_thread.run_sync(claimable, hub, caller, {sha})
    state = await uploads.write(sha, size, offset, _body(request), owned, caller.name)
    if state.complete and not owned and caller.user is not None:  # the bytes were the proof
        await anyio.to_thread.run_sync(record_claim, hub, caller.user, sha)
    return BlobState(**vars(state))


async def _body(request: Request) -> AsyncIterator[bytes]:
    async for chunk in request.stream():
        if chunk:
            yield chunk


@router.post("/repos/{namespace}/{name}/versions")
def commit_version(
    request: Request, caller: Caller, namespace: str, name: str, manifest: PushManifest
) -> dict[str, Any]:
    hub, repo = _hub(request), repo_of(namespace, name)
    require_write(hub, caller, repo)
    entries = checked_entries(manifest)
    if manifest.run_id is not None:  # lineage: only the run's creator may attach versions to it
        owned_run(hub, caller, manifest.run_id)
    owned = claimable(hub, caller, {e.sha256 for e in entries})
    version = commits.commit(hub, repo, manifest, entries, caller.name, owned)
    detail = {
        "number": version.number,
        "digest": version.digest,
        "files": len(entries),
        "alias": manifest.alias,
    }
    _accounts(request).audit(caller, "push", version.ref, detail, _source(request))
    result: dict[str, Any] = to_jsonable(version)
    return result


@router.get("/repos/{namespace}/{name}/blobs/{sha256}", response_model=None)
def download(request: Request, caller: Caller, namespace: str, name: str, sha256: str) -> Response:
    """One blob of a version of this repo; ``Range: bytes=N-`` resumes (206)."""
    hub, repo = _hub(request), repo_of(namespace, name)
    require_read(hub, caller, repo)
    sha = sha256_of(sha256)
    if not repo_holds_blob(hub, repo, sha):
        raise NotFound(f"{repo} has no file with sha256:{sha}")
    size = hub.blobs.size(sha)
    try:
        span = parse_range(request.headers.get("range"), size)
    except RangeNotSatisfiable:
        return Response(status_code=416, headers={"Content-Range": f"bytes */{size}"})
    headers = {"Accept-Ranges": "bytes", "ETag": f'"{sha}"'}
    reader = hub.blobs.open(sha, f"{repo} sha256:{sha}")
    if span is None:
        headers["Content-Length"] = str(size)
        body = stream(reader, sha, None, repo)
        return StreamingResponse(body, media_type="application/octet-stream", headers=headers)
    headers["Content-Length"] = str(span.length)
    headers["Content-Range"] = f"bytes {span.start}-{span.end}/{size}"
    body = stream(reader, sha, span, repo)
    return StreamingResponse(body, status_code=206, media_type="application/octet-stream", headers=headers)


@router.put("/repos/{namespace}/{name}/aliases/{alias}")
def tag(
    request: Request, caller: Caller, namespace: str, name: str, alias: str, body: AliasBody
) -> dict[str, Any]:
    hub, repo = _hub(request), repo_of(namespace, name)
    require_write(hub, caller, repo)
    version = hub.tag(f"{repo}:{body.version}", alias)
    _accounts(request).audit(
        caller, "tag", repo, {"alias": alias, "number": version.number}, _source(request)
    )
    result: dict[str, Any] = to_jsonable(version)
    return result


@router.delete("/repos/{namespace}/{name}/aliases/{alias}")
def untag(request: Request, caller: Caller, namespace: str, name: str, alias: str) -> dict[str, str]:
    hub, repo = _hub(request), repo_of(namespace, name)
    require_write(hub, caller, repo)
    hub.untag(repo, alias)
    _accounts(request).audit(caller, "untag", repo, {"alias": alias}, _source(request))
    return {"repo": repo, "alias": alias}


@router.delete("/repos/{namespace}/{name}/versions/{rev}")
def remove(
    request: Request, caller: Caller, namespace: str, name: str, rev: str, force: bool = False
) -> list[dict[str, Any]]:
    hub, repo = _hub(request), repo_of(namespace, name)
    require_write(hub, caller, repo)
    # One version: "latest" names the newest one, never the whole repo.
    removed = hub.rm(hub.resolve(ref_of(namespace, name, rev)).ref, force=force)
    numbers = [v.number for v in removed]
    _accounts(request).audit(caller, "delete", repo, {"numbers": numbers, "force": force}, _source(request))
    result: list[dict[str, Any]] = to_jsonable(removed)
    return result
