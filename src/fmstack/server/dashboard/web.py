"""What every dashboard page shares: who is looking (``viewer``), rendering a template with the CSRF
token, checking a form's CSRF token, and the route class that turns errors into HTML pages.

The dashboard's edge for errors is ``DashboardRoute``: an ``FmstackError`` becomes a page with the
server's usual status for it (``http_errors.status_of``), and a visitor who must log in first is sent
to the login page. Pages send a Content-Security-Policy that allows no script at all, so even markup
that got past the card sanitiser could not run.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, quote

from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from fastapi.templating import Jinja2Templates
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from fmstack.errors import FmstackError, Forbidden, InvalidInput, Unauthorized
from fmstack.server.access import ANONYMOUS, Principal
from fmstack.server.accounts import Accounts
from fmstack.server.dashboard.datasets import DatasetViews
from fmstack.server.dashboard.sessions import (
    CSRF_COOKIE,
    SESSION_COOKIE,
    csrf_ok,
    csrf_token,
    decode_session,
    new_nonce,
)
from fmstack.server.http_errors import status_of

TEMPLATES = Jinja2Templates(directory=str(Path(__file__).parent / "templates"))
MAX_FORM_BYTES = 64 * 1024
CSP = (
    "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)


@dataclass
class DashboardState:
    key: bytes  # signs session cookies and CSRF tokens (sessions.load_key)
    datasets: DatasetViews


# Why the login page was shown, by the code in its ``why`` parameter: only these texts are shown, so
# a link cannot make the login page display words of someone else's choosing.
LOGIN_REASONS = {
    "ended": "your session has ended: log in again",
    "revoked": "the token of your session is no longer valid (revoked or expired): log in with another",
    "closed": "this server has no anonymous access: log in with a token",
}


class LoginNeeded(Unauthorized):
    """A page that needs a logged-in visitor (no anonymous reads, or a session that ended)."""

    def __init__(self, code: str) -> None:
        super().__init__(LOGIN_REASONS[code])
        self.code = code


def state_of(request: Request) -> DashboardState:
    state: DashboardState = request.app.state.dashboard
    return state


def viewer(request: Request) -> Principal:
    """The visitor: the user of a valid session cookie, else the anonymous caller (when the server
    allows anonymous reads). A cookie whose token was revoked or expired sends them to log in."""
    accounts: Accounts = request.app.state.accounts
    cookie = request.cookies.get(SESSION_COOKIE)
    if cookie:
        session = decode_session(state_of(request).key, cookie)
        if session is None:
            raise LoginNeeded("ended")
        try:
            return accounts.authenticate_digest(session.prefix, session.token_sha256)
        except Unauthorized:
            raise LoginNeeded("revoked") from None
    if not request.app.state.settings.anonymous_read:
        raise LoginNeeded("closed")
    return ANONYMOUS


def is_https(request: Request) -> bool:
    return request.url.scheme == "https"


def page(request: Request, template: str, who: Principal, *, status: int = 200, **context: Any) -> Response:
    """Render ``template`` for ``who``, with a CSRF token for its forms (and the nonce cookie it
    pairs with, set here when the visitor has none yet)."""
    nonce = request.cookies.get(CSRF_COOKIE) or new_nonce()
    response = TEMPLATES.TemplateResponse(
        request,
        template,
        {"who": who, "csrf": csrf_token(state_of(request).key, nonce), **context},
        status_code=status,
    )
    if CSRF_COOKIE not in request.cookies:
        response.set_cookie(CSRF_COOKIE, nonce, httponly=True, samesite="strict", secure=is_https(request))
    return response


async def checked_form(request: Request) -> dict[str, str]:
    """The fields of a POSTed form, once its CSRF token matches the visitor's nonce cookie."""
    fields = await _form_fields(request)
    if not csrf_ok(state_of(request).key, request.cookies.get(CSRF_COOKIE), fields.get("csrf")):
        raise Forbidden(
            "this form has no valid CSRF token (it came from another page, or is older than your "
            "session): reload the page and send it again"
        )
    return fields


async def _form_fields(request: Request) -> dict[str, str]:
    """The fields of a URL-encoded form body (the only kind the pages send), read with the standard
    library's ``parse_qsl``: Starlette's ``request.form()`` needs ``python-multipart``, which the
    server does not otherwise depend on, for nothing these forms use."""
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind != "application/x-www-form-urlencoded":
        raise InvalidInput(f"expected a form (application/x-www-form-urlencoded), got {kind or 'no body'!r}")
    body = await request.body()
    if len(body) > MAX_FORM_BYTES:
        raise InvalidInput(f"form of {len(body)} bytes is over the dashboard's {MAX_FORM_BYTES} bytes")
    try:
        pairs = parse_qsl(body.decode(), keep_blank_values=True, max_num_fields=100, strict_parsing=False)
    except (UnicodeDecodeError, ValueError) as exc:
        raise InvalidInput(f"the form could not be read: {exc}") from None
    return dict(pairs)


def login_redirect(request: Request, code: str) -> Response:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    response = RedirectResponse(f"/login?next={quote(target)}&why={code}", status_code=303)
    response.delete_cookie(SESSION_COOKIE)
    return response


def error_page(request: Request, exc: FmstackError) -> Response:
    try:
        who = viewer(request)  # the header still says who is logged in
    except FmstackError:
        who = ANONYMOUS
    return page(request, "error.html", who, status=status_of(exc), message=str(exc))


class DashboardRoute(APIRoute):
    """Dashboard errors as HTML pages, with the security headers on every answer."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def answer(request: Request) -> Response:
            try:
                response = await handler(request)
            except LoginNeeded as exc:
                response = login_redirect(request, exc.code)
            except FmstackError as exc:
                response = error_page(request, exc)
            except RequestValidationError as exc:
                problems = "; ".join(str(e.get("msg", "")) for e in exc.errors()[:5])
                response = error_page(request, InvalidInput(f"bad request: {problems}"))
            response.headers["Content-Security-Policy"] = CSP
            response.headers["X-Content-Type-Options"] = "nosniff"
            response.headers["Referrer-Policy"] = "same-origin"
            response.headers.setdefault("Cache-Control", "no-store")
            return response

        return answer
