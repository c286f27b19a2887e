"""Who is asking, and what they may read or write.

``principal`` (a FastAPI dependency) turns ``Authorization: Bearer <token>`` into a ``Principal``: a
user with the token's scopes and the user's organisation roles, or the anonymous caller. A wrong,
expired or revoked token is a 401, never a quiet downgrade to anonymous; repeated failures from one
address are answered 429 for a while (``ratelimit.py``). With anonymous reads turned off, a request
without a token is a 401 too.

Rules, in one place:
  * a namespace belongs to the user or organisation of its name; a user is admin of their own
    namespace, an organisation's members have their role in it (read, write, admin); a site admin is
    admin everywhere; a namespace with no account (made by a local push) belongs to site admins;
  * anyone may read a public repo; a private repo is readable with any role in its namespace;
  * writing needs a token with the ``write`` scope and the write or admin role; changing a repo's
    visibility needs the admin role;
  * a repo the caller may not read answers exactly like a missing one (``repo_not_found``); a write
    to a namespace the caller may not write is the same 403 whether or not the repo exists.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from starlette.requests import Request

from fmstack.errors import Forbidden, Unauthorized
from fmstack.hub import Hub
from fmstack.hub.refs import parse_repo
from fmstack.server.tokens import Scope
from fmstack.server.visibility import repo_not_found, repo_visibility

if TYPE_CHECKING:
    from fmstack.server.accounts import Accounts
    from fmstack.server.ratelimit import FailureLimiter

Role = Literal["read", "write", "admin"]
ROLES: tuple[Role, ...] = ("read", "write", "admin")


@dataclass(frozen=True)
class Principal:
    """The caller of one request. ``user`` is None for the anonymous caller."""

    user: str | None = None
    scopes: frozenset[Scope] = frozenset()
    is_admin: bool = False
    roles: dict[str, Role] = field(default_factory=dict)  # organisation -> this user's role in it
    token_prefix: str = ""

    @property
    def name(self) -> str:
        return self.user or "anonymous"

    def role_in(self, namespace: str) -> Role | None:
        if self.user is None:
            return None
        if self.is_admin or namespace == self.user:
            return "admin"
        return self.roles.get(namespace)

    def can_read(self, namespace: str, visibility: str) -> bool:
        if visibility == "public":
            return True
        return "read" in self.scopes and self.role_in(namespace) is not None

    def can_write(self, namespace: str) -> bool:
        return "write" in self.scopes and self.role_in(namespace) in ("write", "admin")


ANONYMOUS = Principal()


def require_read(hub: Hub, principal: Principal, repo: str) -> None:
    """Raise the missing-repo ``NotFound`` unless ``repo`` (``ns/name``) exists and ``principal`` may read it."""
    target = parse_repo(repo)
    visibility = repo_visibility(hub, target.repo)
    if visibility is None or not principal.can_read(target.namespace, visibility):
        raise repo_not_found(target.repo)


def require_write(hub: Hub, principal: Principal, repo: str) -> None:
    """Raise 401/403 unless ``principal`` may write ``repo`` (existing or not). The answer depends on
    the caller and the namespace only, never on whether the repo exists: a caller who may not write
    gets the same 403 for a private repo as for a missing one, so a write attempt reveals nothing.
    (Answering 404 for the private repo only, as before, told it apart from a missing one's 403.)"""
    target = parse_repo(repo)
    if principal.user is None:
        raise Unauthorized("writing needs a token: pass Authorization: Bearer <token> (`fmstack login`)")
    if not principal.can_write(target.namespace):
        raise Forbidden(_why_not_write(principal, target.namespace))


def require_namespace_admin(hub: Hub, principal: Principal, repo: str) -> None:
    """Raise 401/403 unless ``principal`` may write ``repo`` *and* holds the admin role in its
    namespace: changing who may read a repo (making a private one public) is the namespace admins'
    call, not every writer's, or any member with the write role could publish the organisation's
    private models."""
    require_write(hub, principal, repo)
    namespace = parse_repo(repo).namespace
    if principal.role_in(namespace) != "admin":
        raise Forbidden(
            f"{principal.name} may write to {namespace!r}, but changing a repo's visibility needs the admin "
            f"role there: ask an admin of {namespace!r} (`fmstack server member add {namespace} "
            f"{principal.name} --role admin`)"
        )


def require_admin(principal: Principal) -> None:
    if principal.user is None:
        raise Unauthorized("this needs a token: pass Authorization: Bearer <token> (`fmstack login`)")
    if not (principal.is_admin and "admin" in principal.scopes):
        raise Forbidden("this needs a site administrator's token with the admin scope")


def _why_not_write(principal: Principal, namespace: str) -> str:
    if "write" not in principal.scopes:
        return (
            f"token {principal.token_prefix} has scopes {' '.join(sorted(principal.scopes))}: writing needs "
            "the write scope; create one with `fmstack server token create USER --scope write`"
        )
    return (
        f"{principal.name} may not write to namespace {namespace!r}: ask an admin of {namespace!r} for the "
        "write role (`fmstack server member add ORG USER --role write`)"
    )


def principal(request: Request) -> Principal:
    """FastAPI dependency: the caller of this request (see the module docstring)."""
    state = request.app.state
    accounts: Accounts = state.accounts
    limiter: FailureLimiter = state.failures
    client = request.client.host if request.client else "?"
    header = request.headers.get("authorization")
    if header is None:
        if not state.settings.anonymous_read:
            raise Unauthorized("this server has no anonymous access: pass Authorization: Bearer <token>")
        return ANONYMOUS
    limiter.check(client)
    scheme, _, token = header.partition(" ")
    try:
        if scheme.lower() != "bearer" or not token.strip():
            raise Unauthorized("bad Authorization header: expected 'Bearer <token>'")
        return accounts.authenticate(token.strip())
    except Unauthorized:
        limiter.failed(client)
        raise
