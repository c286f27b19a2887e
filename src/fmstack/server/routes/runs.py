"""Records of runs over HTTP: read them, and record the work a client does against a remote hub
(start, metrics, log lines, finish, discard), so its results arrive with their lineage.

A run is shown to its creator, to site administrators, and to callers who may read every version it
consumed and produced (a run naming none is shown to its creator and administrators only), so a
private repo's name never shows through a run list. Only a run's creator (or an administrator) may
add to it or close it. The run's creator is the caller; its environment is the one the client sends
(``device``) and the server's own Python/library versions.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query, Request
from pydantic import BaseModel, Field

from fmstack.errors import Forbidden, NotFound, Unauthorized
from fmstack.hub import Hub
from fmstack.hub.entities import RunInfo, to_jsonable
from fmstack.server.access import Principal, principal, require_read
from fmstack.server.accounts import Accounts
from fmstack.server.paths import LARGEST_NUMBER, checked_ref
from fmstack.server.routes.metadata import may_read_ref

router = APIRouter(prefix="/api/v1/runs")
Caller = Annotated[Principal, Depends(principal)]
RunId = Annotated[int, Path(ge=1, le=LARGEST_NUMBER)]


class RunStart(BaseModel):
    kind: str = Field(min_length=1, max_length=32)
    spec: dict[str, Any]
    inputs: list[str] = Field(default_factory=list, max_length=1000)
    device: str | None = Field(None, max_length=100)
    started_at: datetime | None = None


class RunStarted(BaseModel):
    id: int


class MetricsBody(BaseModel):
    step: int = Field(ge=0, le=LARGEST_NUMBER)
    metrics: dict[str, float] = Field(max_length=1000)


class LogBody(BaseModel):
    text: str = Field(max_length=1_000_000)


class FinishBody(BaseModel):
    status: Literal["running", "succeeded", "failed"] = "succeeded"
    spec_update: dict[str, Any] | None = None


def _hub(request: Request) -> Hub:
    hub: Hub = request.app.state.hub
    return hub


def visible_run(
    hub: Hub, caller: Principal, run: RunInfo, may_read: Callable[[str], bool] | None = None
) -> bool:
    """``may_read`` (ref -> whether the caller may read it) defaults to ``may_read_ref``; a page that
    checks many runs at once passes one that remembers each repo's answer."""
    if caller.user is not None and (caller.is_admin or run.creator == caller.user):
        return True
    refs = [*run.inputs, *run.outputs]
    check = may_read or (lambda ref: may_read_ref(hub, caller, ref))
    return bool(refs) and all(check(r) for r in refs)


def readable_run(hub: Hub, caller: Principal, run_id: int) -> RunInfo:
    run = hub.runs.get(run_id)
    if not visible_run(hub, caller, run):
        raise NotFound(f"no run {run_id}; `fmstack runs ls` lists the runs")
    return run


def owned_run(hub: Hub, caller: Principal, run_id: int) -> RunInfo:
    """The run, when the caller may change it: its creator with a write token, or an administrator.
    A caller without a token is told to log in (401), as on every write, before the run is looked up."""
    if caller.user is None:
        raise Unauthorized(
            "changing a run needs a token: pass Authorization: Bearer <token> (`fmstack login`)"
        )
    run = readable_run(hub, caller, run_id)
    if "write" not in caller.scopes or not (caller.is_admin or run.creator == caller.user):
        raise Forbidden(
            f"run {run_id} is {run.creator}'s: only its creator (or an administrator) may change it"
        )
    return run


@router.get("")
def runs(
    request: Request,
    caller: Caller,
    kind: Annotated[str | None, Query(max_length=32)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 20,
) -> list[dict[str, Any]]:
    hub = _hub(request)
    # Newest first, as many as asked of those this caller may see (looking a bounded way back).
    found = [r for r in hub.runs.recent(kind=kind, limit=limit * 5) if visible_run(hub, caller, r)]
    result: list[dict[str, Any]] = to_jsonable(found[:limit])
    return result


@router.post("")
def start(request: Request, caller: Caller, body: RunStart) -> RunStarted:
    if caller.user is None:
        raise Unauthorized(
            "recording a run needs a token: pass Authorization: Bearer <token> (`fmstack login`)"
        )
    if "write" not in caller.scopes:
        raise Forbidden(
            f"token {caller.token_prefix} has no write scope, so it cannot record a run; create one with "
            "`fmstack server token create USER --scope write`"
        )
    hub = _hub(request)
    for ref in body.inputs:
        require_read(hub, caller, checked_ref(ref).repo)
    # The run's creator is the caller: the run log of a hub opened as that user records it.
    with Hub(dataclasses.replace(hub.settings, user=caller.user)) as as_user:
        run_id = as_user.runs.start(body.kind, body.spec, body.inputs, body.device, body.started_at)
    _audit(request, caller, "run-start", run_id, {"kind": body.kind, "inputs": body.inputs})
    return RunStarted(id=run_id)


@router.get("/{run_id}")
def run(request: Request, caller: Caller, run_id: RunId) -> dict[str, Any]:
    result: dict[str, Any] = to_jsonable(readable_run(_hub(request), caller, run_id))
    return result


@router.delete("/{run_id}")
def discard(request: Request, caller: Caller, run_id: RunId) -> dict[str, int]:
    hub = _hub(request)
    owned_run(hub, caller, run_id)
    hub.runs.discard(run_id)
    _audit(request, caller, "run-discard", run_id, {})
    return {"discarded": run_id}


@router.get("/{run_id}/metrics")
def metrics(
    request: Request, caller: Caller, run_id: RunId, name: Annotated[str | None, Query(max_length=100)] = None
) -> list[dict[str, Any]]:
    hub = _hub(request)
    readable_run(hub, caller, run_id)
    result: list[dict[str, Any]] = to_jsonable(hub.runs.metrics(run_id, name))
    return result


@router.post("/{run_id}/metrics")
def log_metrics(request: Request, caller: Caller, run_id: RunId, body: MetricsBody) -> dict[str, int]:
    hub = _hub(request)
    owned_run(hub, caller, run_id)
    hub.runs.log_metrics(run_id, body.step, body.metrics)
    return {"logged": len(body.metrics)}


@router.get("/{run_id}/logs")
def logs(request: Request, caller: Caller, run_id: RunId) -> dict[str, str]:
    hub = _hub(request)
    readable_run(hub, caller, run_id)
    return {"logs": hub.runs.logs(run_id)}


@router.post("/{run_id}/logs")
def append_log(request: Request, caller: Caller, run_id: RunId, body: LogBody) -> dict[str, int]:
    hub = _hub(request)
    owned_run(hub, caller, run_id)
    hub.runs.append_log(run_id, body.text)
    return {"appended": len(body.text)}


@router.post("/{run_id}/finish")
def finish(request: Request, caller: Caller, run_id: RunId, body: FinishBody) -> dict[str, str]:
    hub = _hub(request)
    owned_run(hub, caller, run_id)
    hub.runs.finish(run_id, body.status, body.spec_update)
    _audit(request, caller, "run-finish", run_id, {"status": body.status})
    return {"status": body.status}


def _audit(request: Request, caller: Principal, action: str, run_id: int, detail: dict[str, Any]) -> None:
    """Starting, finishing and discarding a run are audited; its metrics and log lines are not (a
    training logs thousands, and they change nothing anyone else relies on)."""
    accounts: Accounts = request.app.state.accounts
    source = request.client.host if request.client else ""
    accounts.audit(caller, action, f"run {run_id}", detail, source)
