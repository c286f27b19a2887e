"""A version's card, a repo's alias history and a version's lineage.

Lineage names other repos: a caller sees only the nodes whose repos they may read, so a private repo's
name never leaks through the graph of a public one.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, Field

from fmstack.hub import Hub
from fmstack.hub.entities import LineageNode, to_jsonable
from fmstack.hub.refs import parse_ref
from fmstack.server.access import Principal, principal, require_read, require_write
from fmstack.server.accounts import Accounts
from fmstack.server.paths import ref_of, repo_of
from fmstack.server.visibility import repo_visibility

router = APIRouter(prefix="/api/v1")
Caller = Annotated[Principal, Depends(principal)]


class CardBody(BaseModel):
    text: str = Field(max_length=1_000_000)


def _hub(request: Request) -> Hub:
    hub: Hub = request.app.state.hub
    return hub


def may_read_ref(hub: Hub, caller: Principal, ref: str) -> bool:
    target = parse_ref(ref)
    visibility = repo_visibility(hub, target.repo)
    return visibility is not None and caller.can_read(target.namespace, visibility)


@router.get("/repos/{namespace}/{name}/versions/{rev}/card")
def card(request: Request, caller: Caller, namespace: str, name: str, rev: str) -> CardBody:
    hub = _hub(request)
    require_read(hub, caller, repo_of(namespace, name))
    return CardBody(text=hub.card(ref_of(namespace, name, rev)))


@router.put("/repos/{namespace}/{name}/versions/{rev}/card")
def set_card(
    request: Request, caller: Caller, namespace: str, name: str, rev: str, body: CardBody
) -> dict[str, Any]:
    hub, repo = _hub(request), repo_of(namespace, name)
    require_write(hub, caller, repo)
    version = hub.set_card(ref_of(namespace, name, rev), body.text)
    accounts: Accounts = request.app.state.accounts
    source = request.client.host if request.client else ""
    accounts.audit(caller, "card", version.ref, {"chars": len(body.text)}, source)
    result: dict[str, Any] = to_jsonable(version)
    return result


@router.get("/repos/{namespace}/{name}/aliases")
def alias_history(request: Request, caller: Caller, namespace: str, name: str) -> list[dict[str, Any]]:
    hub, repo = _hub(request), repo_of(namespace, name)
    require_read(hub, caller, repo)
    result: list[dict[str, Any]] = to_jsonable(hub.alias_history(repo))
    return result


@router.get("/repos/{namespace}/{name}/versions/{rev}/lineage")
def lineage(request: Request, caller: Caller, namespace: str, name: str, rev: str) -> dict[str, Any]:
    hub = _hub(request)
    require_read(hub, caller, repo_of(namespace, name))
    found = hub.lineage(ref_of(namespace, name, rev))

    def visible(node: LineageNode) -> dict[str, Any] | None:
        if not may_read_ref(hub, caller, node.ref):
            return None
        parents = [p for p in (visible(n) for n in node.parents) if p is not None]
        return {**to_jsonable(node), "parents": parents}

    downstream = [d for d in (visible(n) for n in found.downstream) if d is not None]
    return {"ref": found.ref, "upstream": visible(found.upstream), "downstream": downstream}
