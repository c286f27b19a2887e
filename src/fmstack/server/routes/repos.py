"""Reading repos and versions, and setting a repo's visibility.

Every read checks access first (``require_read``), so a private repo the caller may not read answers
exactly like a missing one; listings leave such repos out.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel

from fmstack.hub import Hub
from fmstack.hub.entities import Kind, to_jsonable
from fmstack.server.access import Principal, principal, require_namespace_admin, require_read
from fmstack.server.paths import ref_of, repo_of
from fmstack.server.visibility import set_visibility

router = APIRouter(prefix="/api/v1/repos")
Caller = Annotated[Principal, Depends(principal)]


class VisibilityBody(BaseModel):
    visibility: Literal["public", "private"]


def hub_of(request: Request) -> Hub:
    hub: Hub = request.app.state.hub
    return hub


@router.get("")
def list_repos(
    request: Request,
    caller: Caller,
    kind: Kind | None = None,
    namespace: Annotated[str | None, Query()] = None,
) -> list[dict[str, Any]]:
    repos = hub_of(request).ls(kind=kind, namespace=namespace)
    visible = [r for r in repos if caller.can_read(r.repo.split("/")[0], r.visibility)]
    return [to_jsonable(r) for r in visible]


@router.get("/{namespace}/{name}")
def repo(request: Request, caller: Caller, namespace: str, name: str) -> dict[str, Any]:
    hub, repo = hub_of(request), repo_of(namespace, name)
    require_read(hub, caller, repo)
    info = next(r for r in hub.ls(namespace=namespace) if r.repo == repo)
    return {"repo": to_jsonable(info), "versions": to_jsonable(hub.versions(repo))}


@router.get("/{namespace}/{name}/versions/{rev}")
def version(request: Request, caller: Caller, namespace: str, name: str, rev: str) -> dict[str, Any]:
    hub = hub_of(request)
    require_read(hub, caller, repo_of(namespace, name))
    detail: dict[str, Any] = to_jsonable(hub.info(ref_of(namespace, name, rev)))
    return detail


@router.put("/{namespace}/{name}/visibility")
def put_visibility(
    request: Request, caller: Caller, namespace: str, name: str, body: VisibilityBody
) -> dict[str, str]:
    hub, repo = hub_of(request), repo_of(namespace, name)
    require_namespace_admin(hub, caller, repo)
    set_visibility(hub, repo, body.visibility)
    request.app.state.accounts.audit(
        caller, "visibility", repo, {"visibility": body.visibility}, _source(request)
    )
    return {"repo": repo, "visibility": body.visibility}


def _source(request: Request) -> str:
    return request.client.host if request.client else ""
