"""Accounts, tokens and the audit log (server/accounts.py), on SQLite and on PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Table, text

from fmstack.errors import Conflict, InvalidInput, NotFound, Unauthorized
from fmstack.hub import Hub
from fmstack.server.accounts import Accounts
from fmstack.server.app import open_hub
from fmstack.server.db import SERVER_MIGRATIONS
from fmstack.server.schema import ServerBase
from fmstack.server.settings import ServerSettings


@pytest.fixture
def opened(server_settings: ServerSettings) -> Iterator[tuple[Hub, Accounts]]:
    hub, accounts = open_hub(server_settings)
    try:
        yield hub, accounts
    finally:
        hub.close()


def test_server_migrations_build_exactly_the_orm_tables(opened: tuple[Hub, Accounts]) -> None:
    hub, _ = opened
    assert SERVER_MIGRATIONS.current(hub.engine) == SERVER_MIGRATIONS.head
    ours = set(ServerBase.metadata.tables)

    def only_ours(obj: object, name: str | None, type_: str, reflected: bool, compare_to: object) -> bool:
        # The hub's own tables share the database; tests/hub/test_db.py checks those.
        table = obj if isinstance(obj, Table) else getattr(obj, "table", None)
        return isinstance(table, Table) and table.name in ours

    with hub.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"include_object": only_ours})
        diff = compare_metadata(context, ServerBase.metadata)
    assert diff == [], "server/schema.py changed without a migration under server/migrations/versions"


def test_tokens_are_stored_only_as_hashes(opened: tuple[Hub, Accounts]) -> None:
    hub, accounts = opened
    accounts.add("ann", "user")
    new = accounts.create_token("ann", ["read"], name="laptop")
    secret = new.token.rsplit("_", 1)[1]
    with hub.engine.connect() as conn:
        rows = conn.execute(text("SELECT * FROM server_tokens")).all()
    stored = " ".join(str(value) for row in rows for value in row)
    assert secret not in stored and new.token not in stored
    assert new.info.prefix in stored
    assert accounts.authenticate(new.token).user == "ann"


def test_wrong_expired_and_revoked_tokens_are_refused_alike(opened: tuple[Hub, Accounts]) -> None:
    _, accounts = opened
    accounts.add("ann", "user")
    good = accounts.create_token("ann", ["write"]).token
    expired = accounts.create_token("ann", ["write"], expires_in=timedelta(seconds=-1)).token
    revoked = accounts.create_token("ann", ["write"])
    accounts.revoke(revoked.info.prefix)
    wrong = good[:-4] + ("AAAA" if not good.endswith("AAAA") else "BBBB")
    messages = set()
    for token in (expired, revoked.token, wrong, "not-a-token"):
        with pytest.raises(Unauthorized) as caught:
            accounts.authenticate(token)
        messages.add(str(caught.value))
    assert len(messages) == 1, "the reason a token fails must not be told apart"
    assert accounts.authenticate(good).scopes == {"read", "write"}


def test_last_use_is_recorded(opened: tuple[Hub, Accounts]) -> None:
    _, accounts = opened
    accounts.add("ann", "user")
    new = accounts.create_token("ann", ["read"])
    assert accounts.tokens("ann")[0].last_used_at is None
    accounts.authenticate(new.token)
    assert accounts.tokens("ann")[0].last_used_at is not None


def test_roles_reach_the_principal(opened: tuple[Hub, Accounts]) -> None:
    _, accounts = opened
    accounts.add("ann", "user")
    accounts.add("acme", "org")
    accounts.add_member("acme", "ann", "write")
    who = accounts.authenticate(accounts.create_token("ann", ["write"]).token)
    assert who.role_in("acme") == "write" and who.role_in("ann") == "admin" and who.role_in("other") is None
    accounts.add_member("acme", "ann", "read")  # a second add changes the role
    assert accounts.get("acme").members == {"ann": "read"}
    accounts.remove_member("acme", "ann")
    assert accounts.get("ann").members == {}


def test_bad_names_scopes_roles_and_taken_names_are_the_callers_to_fix(opened: tuple[Hub, Accounts]) -> None:
    _, accounts = opened
    accounts.add("ann", "user")
    with pytest.raises(Conflict):
        accounts.add("ann", "org")
    with pytest.raises(InvalidInput):
        accounts.add("../etc", "user")
    with pytest.raises(InvalidInput):
        accounts.create_token("ann", ["root"])
    with pytest.raises(InvalidInput, match="not a site administrator"):
        accounts.create_token("ann", ["admin"])
    with pytest.raises(NotFound):
        accounts.add_member("ann", "ann", "read")  # ann is a user, not an organisation
    with pytest.raises(InvalidInput):
        accounts.add_member("x", "ann", "owner")
