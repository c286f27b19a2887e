"""Liveness and readiness: fmstack's own (/healthz, /readyz) and KServe v2's (/v2/health/*)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse

from fmstack.serve.errors import hide_paths
from fmstack.serve.schemas import Readiness, V2Ready
from fmstack.serve.state import ServerState, server_state

router = APIRouter(tags=["health"])
State = Annotated[ServerState, Depends(server_state)]


def _readiness(state: ServerState) -> JSONResponse:
    """Whether to send traffic here, with each model's version and, when the version its ref moved to
    failed to load, why (the loaded one keeps serving: still ready). File paths are left out."""
    models = {name: m.current.version.ref if m.current else None for name, m in state.models.models.items()}
    body: dict[str, object] = {"status": "ready" if state.ready else "not ready"}
    if not state.ready:
        body["reason"] = (
            "draining"
            if state.draining
            else hide_paths(state.load_error or state.models.failure or "loading")
        )
    body["models"] = models
    failed = {name: m.failed[1] for name, m in state.models.models.items() if m.failed is not None}
    if failed:
        body["load_failures"] = failed
    return JSONResponse(body, status_code=200 if state.ready else 503)


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """The process is up (even while models load or requests drain)."""
    return {"status": "ok"}


@router.get(
    "/readyz",
    responses={
        200: {"model": Readiness, "description": "Every model is loaded."},
        503: {"model": Readiness, "description": "Loading, draining on shutdown, or loading failed."},
    },
)
async def readyz(state: State) -> JSONResponse:
    """200 once every model is loaded; 503 before that and while draining on shutdown."""
    return _readiness(state)


@router.get("/v2/health/live")
async def v2_live() -> dict[str, bool]:
    return {"live": True}


@router.get(
    "/v2/health/ready",
    responses={
        200: {"model": V2Ready, "description": "Every model is loaded."},
        503: {"model": V2Ready, "description": "Loading, or draining on shutdown."},
    },
)
async def v2_ready(state: State) -> JSONResponse:
    return JSONResponse({"ready": state.ready}, status_code=200 if state.ready else 503)
