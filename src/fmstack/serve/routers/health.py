"""Liveness and readiness: fmstack's own (/healthz, /readyz) and KServe v2's (/v2/health/*)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse

from fmstack.serve.state import ServerState, server_state

router = APIRouter(tags=["health"])
State = Annotated[ServerState, Depends(server_state)]


def _readiness(state: ServerState) -> JSONResponse:
    models = {name: m.current.version.ref if m.current else None for name, m in state.models.models.items()}
    if state.ready:
        return JSONResponse({"status": "ready", "models": models})
    reason = "draining" if state.draining else state.load_error or state.models.failure or "loading"
    return JSONResponse({"status": "not ready", "reason": reason, "models": models}, status_code=503)


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """The process is up (even while models load or requests drain)."""
    return {"status": "ok"}


@router.get("/readyz")
async def readyz(state: State) -> JSONResponse:
    """200 once every model is loaded; 503 before that and while draining on shutdown."""
    return _readiness(state)


@router.get("/v2/health/live")
async def v2_live() -> dict[str, bool]:
    return {"live": True}


@router.get("/v2/health/ready")
async def v2_ready(state: State) -> JSONResponse:
    return JSONResponse({"ready": state.ready}, status_code=200 if state.ready else 503)
