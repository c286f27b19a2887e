"""``/login`` and ``/logout``: a token in a form becomes a signed session cookie (see ``sessions.py``).

A wrong token counts against the address's failed-authentication budget, as a wrong Bearer header
does (``ratelimit.py``), so the form is no faster way to guess tokens than the API.
"""

from __future__ import annotations

import time
from typing import Annotated

from fastapi import APIRouter, Depends, Query
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from fmstack.errors import Unauthorized
from fmstack.server.access import ANONYMOUS, Principal
from fmstack.server.accounts import Accounts
from fmstack.server.dashboard.sessions import SESSION_COOKIE, SESSION_MAX_AGE_S, Session, encode_session
from fmstack.server.dashboard.web import (
    LOGIN_REASONS,
    DashboardRoute,
    checked_form,
    is_https,
    page,
    state_of,
    viewer,
)
from fmstack.server.ratelimit import FailureLimiter
from fmstack.server.tokens import digest, prefix_of

router = APIRouter(route_class=DashboardRoute, include_in_schema=False)


def _safe_next(target: str) -> str:
    """Only a path on this site: ``//evil.example`` or ``https://...`` would make the form an open
    redirect."""
    return target if target.startswith("/") and not target.startswith(("//", "/\\")) else "/"


@router.get("/login")
def login_form(
    request: Request,
    next_: Annotated[str, Query(alias="next", max_length=2000)] = "/",
    why: Annotated[str, Query(max_length=20)] = "",
) -> Response:
    return page(request, "login.html", ANONYMOUS, next=_safe_next(next_), why=LOGIN_REASONS.get(why, ""))


@router.post("/login")
async def login(request: Request) -> Response:
    form = await checked_form(request)
    token = form.get("token", "").strip()
    target = _safe_next(form.get("next", "/"))
    limiter: FailureLimiter = request.app.state.failures
    client = request.client.host if request.client else "?"
    limiter.check(client)
    accounts: Accounts = request.app.state.accounts
    try:
        prefix = prefix_of(token)
        if prefix is None:
            raise Unauthorized("that is not an fmstack token (they read fmk_...): paste the whole token")
        accounts.authenticate(token)
    except Unauthorized as exc:
        limiter.failed(client)
        return page(request, "login.html", ANONYMOUS, status=401, next=target, why=str(exc))
    cookie = encode_session(state_of(request).key, Session(prefix, digest(token), int(time.time())))
    response = RedirectResponse(target, status_code=303)
    response.set_cookie(
        SESSION_COOKIE,
        cookie,
        max_age=SESSION_MAX_AGE_S,
        httponly=True,
        samesite="lax",
        secure=is_https(request),
    )
    return response


@router.post("/logout")
async def logout(request: Request, _who: Annotated[Principal, Depends(viewer)]) -> Response:
    await checked_form(request)
    response = RedirectResponse("/", status_code=303)
    response.delete_cookie(SESSION_COOKIE)
    return response
