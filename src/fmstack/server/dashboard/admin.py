"""``/admin``: users, organisations, members and tokens, for site administrators (a session opened with
an admin-scope token, as ``require_admin`` asks of the API).

Each form posts to its own path, is CSRF-checked, changes the accounts through ``Accounts`` and is
written to the audit log; a new token is shown once, on the page that answers its creation, and never
again (only its hash is stored).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Depends
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from fmstack.errors import InvalidInput
from fmstack.server.access import Principal, require_admin
from fmstack.server.accounts import Accounts
from fmstack.server.dashboard.web import DashboardRoute, checked_form, page, viewer

router = APIRouter(prefix="/admin", route_class=DashboardRoute, include_in_schema=False)
Who = Annotated[Principal, Depends(viewer)]
MAX_EXPIRY_DAYS = 3650


def _accounts(request: Request) -> Accounts:
    accounts: Accounts = request.app.state.accounts
    return accounts


def _admin_page(request: Request, who: Principal, *, status: int = 200, **extra: object) -> Response:
    accounts = _accounts(request)
    return page(
        request,
        "admin.html",
        who,
        status=status,
        users=accounts.ls("user"),
        orgs=accounts.ls("org"),
        tokens=accounts.tokens(),
        **extra,
    )


def _audit(request: Request, who: Principal, action: str, target: str, detail: dict[str, object]) -> None:
    source = request.client.host if request.client else ""
    _accounts(request).audit(who, action, target, detail, source)


def _done(message: str) -> Response:
    return RedirectResponse(f"/admin?done={quote(message)}", status_code=303)


@router.get("")
def admin(request: Request, who: Who, done: str = "") -> Response:
    require_admin(who)
    return _admin_page(request, who, done=done[:200])


@router.post("/users")
async def add_user(request: Request, who: Who) -> Response:
    require_admin(who)
    form = await checked_form(request)
    name, is_admin = form.get("name", "").strip(), form.get("admin") == "on"
    _accounts(request).add(name, "user", admin=is_admin)
    _audit(request, who, "user-add", name, {"admin": is_admin})
    return _done(f"added user {name}")


@router.post("/orgs")
async def add_org(request: Request, who: Who) -> Response:
    require_admin(who)
    form = await checked_form(request)
    name = form.get("name", "").strip()
    _accounts(request).add(name, "org")
    _audit(request, who, "org-add", name, {})
    return _done(f"added organisation {name}")


@router.post("/members")
async def add_member(request: Request, who: Who) -> Response:
    require_admin(who)
    form = await checked_form(request)
    org, user, role = form.get("org", ""), form.get("user", ""), form.get("role", "read")
    _accounts(request).add_member(org, user, role)
    _audit(request, who, "member-add", org, {"user": user, "role": role})
    return _done(f"{user} is {role} in {org}")


@router.post("/members/remove")
async def remove_member(request: Request, who: Who) -> Response:
    require_admin(who)
    form = await checked_form(request)
    org, user = form.get("org", ""), form.get("user", "")
    _accounts(request).remove_member(org, user)
    _audit(request, who, "member-remove", org, {"user": user})
    return _done(f"removed {user} from {org}")


@router.post("/tokens")
async def create_token(request: Request, who: Who) -> Response:
    require_admin(who)
    form = await checked_form(request)
    user, name = form.get("user", ""), form.get("name", "")[:100]
    days = form.get("expires_days", "").strip()
    if days and not (days.isdigit() and 1 <= int(days) <= MAX_EXPIRY_DAYS):
        raise InvalidInput(f"bad expiry {days!r}: a whole number of days, 1 to {MAX_EXPIRY_DAYS}, or empty")
    expires = timedelta(days=int(days)) if days else None
    new = _accounts(request).create_token(user, [form.get("scope", "read")], name=name, expires_in=expires)
    _audit(request, who, "token-create", user, {"prefix": new.info.prefix, "scopes": new.info.scopes})
    return _admin_page(request, who, new_token=new)


@router.post("/tokens/revoke")
async def revoke_token(request: Request, who: Who) -> Response:
    require_admin(who)
    form = await checked_form(request)
    info = _accounts(request).revoke(form.get("prefix", ""))
    _audit(request, who, "token-revoke", info.user, {"prefix": info.prefix})
    return _done(f"revoked token {info.prefix} of {info.user}")
