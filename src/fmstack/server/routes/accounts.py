"""``/healthz`` and ``/api/v1/whoami``: liveness, and who a token belongs to."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends
from pydantic import BaseModel

from fmstack.server.access import Principal, principal

router = APIRouter()


class Health(BaseModel):
    status: str


class WhoAmI(BaseModel):
    user: str | None
    scopes: list[str]
    is_admin: bool
    orgs: dict[str, str]
    token_prefix: str


@router.get("/healthz")
def healthz() -> Health:
    return Health(status="ok")


@router.get("/api/v1/whoami")
def whoami(caller: Annotated[Principal, Depends(principal)]) -> WhoAmI:
    return WhoAmI(
        user=caller.user,
        scopes=sorted(caller.scopes),
        is_admin=caller.is_admin,
        orgs=dict(caller.roles),
        token_prefix=caller.token_prefix,
    )
