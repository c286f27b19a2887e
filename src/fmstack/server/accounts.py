"""Users, organisations, memberships, tokens and the audit log, over the server's tables.

ORM rows stay in here: callers get ``Account``, ``TokenInfo``, ``AuditEntry`` and ``Principal`` objects.
A token is returned once, by ``create_token``; only its hash is stored.
"""

from __future__ import annotations

import hmac
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, cast

import sqlalchemy.exc
from sqlalchemy import Engine, delete, select
from sqlalchemy.orm import Session, sessionmaker

from fmstack.errors import Conflict, InvalidInput, NotFound, Unauthorized, clip
from fmstack.server.access import ROLES, Principal, Role
from fmstack.server.schema import AccountRow, AuditRow, MembershipRow, TokenRow
from fmstack.server.tokens import SCOPES, Scope, digest, implied, mint, prefix_of

AccountKind = Literal["user", "org"]
_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")
# last_used_at is written at most this often per token: a write per request would serialise readers.
_LAST_USED_EVERY = timedelta(seconds=60)
_BAD_TOKEN = "the token is not valid here (wrong, expired or revoked): create a new one with `fmstack server token create`"


def now() -> datetime:
    return datetime.now(UTC)


def _aware(moment: datetime | None) -> datetime | None:
    """SQLite hands back naive datetimes for timezone columns; they were stored in UTC."""
    if moment is None or moment.tzinfo is not None:
        return moment
    return moment.replace(tzinfo=UTC)


@dataclass(frozen=True)
class Account:
    name: str
    kind: AccountKind
    is_admin: bool
    created_at: datetime
    members: dict[str, Role]  # for an organisation: user -> role; for a user: organisation -> role


@dataclass(frozen=True)
class TokenInfo:
    prefix: str
    user: str
    name: str
    scopes: list[Scope]
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None
    last_used_at: datetime | None


@dataclass(frozen=True)
class NewToken:
    token: str  # shown once
    info: TokenInfo


@dataclass(frozen=True)
class AuditEntry:
    id: int
    at: datetime
    actor: str
    token_prefix: str
    action: str
    target: str
    detail: dict[str, Any]
    source: str


def check_name(name: str) -> str:
    if not _NAME_RE.fullmatch(name) or name in {".", ".."}:
        raise InvalidInput(
            f"bad account name {clip(name)!r}: start with a letter or digit, then letters, digits, '.', '_' "
            "or '-' (at most 100 characters); it is also the account's namespace"
        )
    return name


def check_scopes(scopes: list[str]) -> list[Scope]:
    bad = [s for s in scopes if s not in SCOPES]
    if bad or not scopes:
        raise InvalidInput(f"bad scopes {', '.join(map(repr, bad)) or '(none)'}: use read, write or admin")
    return [cast(Scope, s) for s in scopes]


def check_role(role: str) -> Role:
    if role not in ROLES:
        raise InvalidInput(f"bad role {clip(role)!r}: use read, write or admin")
    return role


class Accounts:
    def __init__(self, engine: Engine) -> None:
        self._sessions = sessionmaker(engine, expire_on_commit=False)

    # -- accounts --------------------------------------------------------------------------------

    def add(self, name: str, kind: AccountKind, *, admin: bool = False) -> Account:
        check_name(name)
        row = AccountRow(name=name, kind=kind, is_admin=admin and kind == "user", created_at=now())
        try:
            with self._sessions.begin() as session:
                session.add(row)
        except sqlalchemy.exc.IntegrityError:
            raise Conflict(f"the name {name!r} is taken by a user or organisation: choose another") from None
        return Account(row.name, kind, row.is_admin, row.created_at, {})

    def get(self, name: str) -> Account:
        with self._sessions() as session:
            return self._account(session, self._row(session, name))

    def ls(self, kind: AccountKind | None = None) -> list[Account]:
        with self._sessions() as session:
            query = select(AccountRow).order_by(AccountRow.name)
            if kind is not None:
                query = query.where(AccountRow.kind == kind)
            return [self._account(session, row) for row in session.scalars(query)]

    def has_admin(self) -> bool:
        with self._sessions() as session:
            return session.scalars(select(AccountRow.id).where(AccountRow.is_admin)).first() is not None

    def _row(self, session: Session, name: str, kind: AccountKind | None = None) -> AccountRow:
        row = session.scalars(select(AccountRow).where(AccountRow.name == name)).first()
        if row is None or (kind is not None and row.kind != kind):
            what = {"user": "user", "org": "organisation", None: "user or organisation"}[kind]
            raise NotFound(f"no {what} named {clip(name)!r}; `fmstack server user ls` lists them")
        return row

    def _account(self, session: Session, row: AccountRow) -> Account:
        mine = MembershipRow.org_id if row.kind == "org" else MembershipRow.user_id
        other = MembershipRow.user_id if row.kind == "org" else MembershipRow.org_id
        pairs = session.execute(
            select(AccountRow.name, MembershipRow.role)
            .join(AccountRow, AccountRow.id == other)
            .where(mine == row.id)
        ).all()
        members = {name: cast(Role, role) for name, role in pairs}
        return Account(
            row.name, cast(AccountKind, row.kind), row.is_admin, _aware(row.created_at) or now(), members
        )

    # -- memberships -----------------------------------------------------------------------------

    def add_member(self, org: str, user: str, role: str) -> None:
        """Add ``user`` to ``org`` with ``role``, or change the role of a member."""
        check_role(role)
        with self._sessions.begin() as session:
            org_row, user_row = self._row(session, org, "org"), self._row(session, user, "user")
            row = session.scalars(
                select(MembershipRow).where(
                    MembershipRow.org_id == org_row.id, MembershipRow.user_id == user_row.id
                )
            ).first()
            if row is None:
                session.add(MembershipRow(org_id=org_row.id, user_id=user_row.id, role=role))
            else:
                row.role = role

    def remove_member(self, org: str, user: str) -> None:
        with self._sessions.begin() as session:
            org_row, user_row = self._row(session, org, "org"), self._row(session, user, "user")
            done = session.execute(
                delete(MembershipRow).where(
                    MembershipRow.org_id == org_row.id, MembershipRow.user_id == user_row.id
                )
            )
            if getattr(done, "rowcount", 0) == 0:
                raise NotFound(f"{user!r} is not a member of {org!r}")

    # -- tokens ----------------------------------------------------------------------------------

    def create_token(
        self, user: str, scopes: list[str], *, name: str = "", expires_in: timedelta | None = None
    ) -> NewToken:
        wanted = check_scopes(scopes)
        token, prefix = mint()
        created = now()
        with self._sessions.begin() as session:
            owner = self._row(session, user, "user")
            if "admin" in wanted and not owner.is_admin:
                raise InvalidInput(
                    f"{user!r} is not a site administrator, so a token of theirs cannot have the admin scope"
                )
            row = TokenRow(
                user_id=owner.id,
                prefix=prefix,
                token_sha256=digest(token),
                name=name,
                scopes=" ".join(sorted(implied(wanted), key=SCOPES.index)),
                created_at=created,
                expires_at=created + expires_in if expires_in is not None else None,
            )
            session.add(row)
        return NewToken(token, _token_info(row, user))

    def tokens(self, user: str | None = None) -> list[TokenInfo]:
        with self._sessions() as session:
            query = select(TokenRow, AccountRow.name).join(AccountRow, AccountRow.id == TokenRow.user_id)
            if user is not None:
                query = query.where(TokenRow.user_id == self._row(session, user, "user").id)
            return [_token_info(row, owner) for row, owner in session.execute(query.order_by(TokenRow.id))]

    def revoke(self, prefix: str) -> TokenInfo:
        with self._sessions.begin() as session:
            found = session.execute(
                select(TokenRow, AccountRow.name)
                .join(AccountRow, AccountRow.id == TokenRow.user_id)
                .where(TokenRow.prefix == prefix.removeprefix("fmk_"))
            ).first()
            if found is None:
                raise NotFound(f"no token with prefix {clip(prefix)!r}; `fmstack server token ls` lists them")
            row, owner = found
            row.revoked_at = row.revoked_at or now()
            return _token_info(row, owner)

    def authenticate(self, token: str) -> Principal:
        """The principal of a valid token; ``Unauthorized`` (the same message) for any other."""
        prefix = prefix_of(token)
        if prefix is None:
            raise Unauthorized(_BAD_TOKEN)
        return self.authenticate_digest(prefix, digest(token))

    def authenticate_digest(self, prefix: str, token_sha256: str) -> Principal:
        """As ``authenticate``, given the token's prefix and sha256: the dashboard's session cookie
        (signed by the server) holds these, not the token, and is checked again on every request."""
        with self._sessions() as session:
            found = session.execute(
                select(TokenRow, AccountRow)
                .join(AccountRow, AccountRow.id == TokenRow.user_id)
                .where(TokenRow.prefix == prefix)
            ).first()
            # constant-time, so the time taken says nothing about how close a guess was
            if found is None or not hmac.compare_digest(token_sha256, found[0].token_sha256):
                raise Unauthorized(_BAD_TOKEN)
            row, user = found
            expires = _aware(row.expires_at)
            if row.revoked_at is not None or (expires is not None and expires <= now()):
                raise Unauthorized(_BAD_TOKEN)
            roles = self._account(session, user).members
            last_used = _aware(row.last_used_at)
        if last_used is None or now() - last_used > _LAST_USED_EVERY:
            self._touch(row.id)
        scopes = frozenset(cast(Scope, s) for s in row.scopes.split())
        return Principal(user.name, scopes, user.is_admin, roles, prefix)

    def _touch(self, token_id: int) -> None:
        with self._sessions.begin() as session:
            row = session.get(TokenRow, token_id)
            if row is not None:
                row.last_used_at = now()

    # -- audit log -------------------------------------------------------------------------------

    def audit(
        self,
        principal: Principal,
        action: str,
        target: str,
        detail: dict[str, Any] | None = None,
        source: str = "",
    ) -> None:
        with self._sessions.begin() as session:
            session.add(
                AuditRow(
                    at=now(),
                    actor=principal.name,
                    token_prefix=principal.token_prefix,
                    action=action,
                    target=target,
                    detail=detail or {},
                    source=source,
                )
            )

    def audit_log(
        self, *, limit: int = 50, actor: str | None = None, target: str | None = None
    ) -> list[AuditEntry]:
        """The latest entries, newest first."""
        with self._sessions() as session:
            query = select(AuditRow).order_by(AuditRow.id.desc()).limit(limit)
            if actor is not None:
                query = query.where(AuditRow.actor == actor)
            if target is not None:
                query = query.where(AuditRow.target.startswith(target, autoescape=True))
            return [
                AuditEntry(
                    r.id,
                    _aware(r.at) or r.at,
                    r.actor,
                    r.token_prefix,
                    r.action,
                    r.target,
                    dict(r.detail),
                    r.source,
                )
                for r in session.scalars(query)
            ]


def _token_info(row: TokenRow, owner: str) -> TokenInfo:
    return TokenInfo(
        prefix=row.prefix,
        user=owner,
        name=row.name,
        scopes=[cast(Scope, s) for s in row.scopes.split()],
        created_at=_aware(row.created_at) or row.created_at,
        expires_at=_aware(row.expires_at),
        revoked_at=_aware(row.revoked_at),
        last_used_at=_aware(row.last_used_at),
    )
