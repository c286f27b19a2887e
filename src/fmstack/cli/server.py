"""``fmstack server ...``: run the hub server, and manage its accounts, tokens and audit log.

Account commands work on the hub's database directly (run them on the server's machine, with the
server's FMSTACK_HOME / FMSTACK_DATABASE_URL); a token is printed once, when it is created.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from fmstack.cli.output import JsonFlag, console, emit, err_console
from fmstack.cli.spec_options import spec_options
from fmstack.errors import InvalidInput
from fmstack.server.accounts import Accounts, NewToken
from fmstack.server.settings import ServerSettings

app = typer.Typer(no_args_is_help=True)
user_app = typer.Typer(no_args_is_help=True, help="Users: add, ls.")
token_app = typer.Typer(no_args_is_help=True, help="Tokens: create, ls, revoke.")
org_app = typer.Typer(no_args_is_help=True, help="Organisations: add, ls.")
member_app = typer.Typer(no_args_is_help=True, help="Organisation members: add (or change role), rm.")
app.add_typer(user_app, name="user")
app.add_typer(token_app, name="token")
app.add_typer(org_app, name="org")
app.add_typer(member_app, name="member")

ScopeOpt = Annotated[
    list[str] | None, typer.Option("--scope", "-s", help="read, write or admin (repeatable; default write).")
]


@contextmanager
def _accounts() -> Iterator[Accounts]:
    from fmstack.server.app import open_hub

    hub, accounts = open_hub(ServerSettings())
    try:
        yield accounts
    finally:
        hub.close()


@app.command()
@spec_options(ServerSettings, hide={"hub"})
def start(fields: dict[str, Any]) -> None:
    """Serve the hub (FMSTACK_HOME or FMSTACK_DATABASE_URL + FMSTACK_STORE_URL) over HTTP: the API, the
    Hugging Face-compatible API, and the web dashboard at / (log in there with a token)."""
    import os

    import uvicorn
    from pydantic import ValidationError

    from fmstack.server.app import open_hub

    try:
        settings = ServerSettings(**fields)
    except ValidationError as exc:
        problems = "; ".join(f"--{str(e['loc'][0]).replace('_', '-')}: {e['msg']}" for e in exc.errors())
        raise InvalidInput(f"bad server options: {problems}") from None
    host, port, workers = settings.host, settings.port, settings.workers
    hub, accounts = open_hub(settings)  # a bad database fails here, once, with its message
    try:
        if not accounts.has_admin():
            err_console.print(
                "no administrator yet: create one with `fmstack server create-admin --name NAME`"
            )
    finally:
        hub.close()
    os.environ.update(settings.to_worker_env())
    err_console.print(
        f"fmstack hub server on http://{host}:{port} ({workers} worker{'s' * (workers > 1)}); "
        f"dashboard at http://{host}:{port}/"
    )
    # Access logs carry paths, never headers: tokens travel only in Authorization.
    uvicorn.run(
        "fmstack.server.app:app_from_worker_env",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level="warning",
    )


@app.command("create-admin")
def create_admin(
    name: Annotated[str, typer.Option("--name", help="The administrator's user name.")],
    json_output: JsonFlag = False,
) -> None:
    """Create a site administrator and print an admin token for them, once."""
    with _accounts() as accounts:
        accounts.add(name, "user", admin=True)
        new = accounts.create_token(name, ["admin"], name="created with create-admin")
    _show_token(new, json_output)


@user_app.command("add")
def user_add(
    name: Annotated[str, typer.Argument(help="User name (also the user's namespace).")],
    admin: Annotated[bool, typer.Option("--admin", help="Make the user a site administrator.")] = False,
    json_output: JsonFlag = False,
) -> None:
    """Add a user (no token yet: `fmstack server token create USER`)."""
    with _accounts() as accounts:
        account = accounts.add(name, "user", admin=admin)
    emit(account, json_output, lambda: console.print(f"added user {escape(name)}"))


@user_app.command("ls")
def user_ls(json_output: JsonFlag = False) -> None:
    """List users with their organisations and roles."""
    _list_accounts("user", json_output)


@org_app.command("add")
def org_add(
    name: Annotated[str, typer.Argument(help="Organisation name (also its namespace).")],
    json_output: JsonFlag = False,
) -> None:
    """Add an organisation; add members with `fmstack server member add ORG USER --role ROLE`."""
    with _accounts() as accounts:
        account = accounts.add(name, "org")
    emit(account, json_output, lambda: console.print(f"added organisation {escape(name)}"))


@org_app.command("ls")
def org_ls(json_output: JsonFlag = False) -> None:
    """List organisations with their members and roles."""
    _list_accounts("org", json_output)


def _list_accounts(kind: str, json_output: bool) -> None:
    with _accounts() as accounts:
        found = accounts.ls("user" if kind == "user" else "org")

    def human() -> None:
        column = "organisations" if kind == "user" else "members"
        table = Table("name", "admin" if kind == "user" else "", column, box=None)
        for a in found:
            members = ", ".join(f"{k} ({v})" for k, v in sorted(a.members.items()))
            table.add_row(escape(a.name), "yes" if a.is_admin else "", escape(members))
        console.print(table if found else f"no {kind}s yet")

    emit(found, json_output, human)


@member_app.command("add")
def member_add(
    org: Annotated[str, typer.Argument(help="Organisation.")],
    user: Annotated[str, typer.Argument(help="User.")],
    role: Annotated[str, typer.Option("--role", "-r", help="read, write or admin.")] = "read",
) -> None:
    """Add a user to an organisation, or change their role."""
    with _accounts() as accounts:
        accounts.add_member(org, user, role)
    console.print(f"{escape(user)} is now {role} in {escape(org)}")


@member_app.command("rm")
def member_rm(
    org: Annotated[str, typer.Argument(help="Organisation.")],
    user: Annotated[str, typer.Argument(help="User.")],
) -> None:
    """Remove a user from an organisation."""
    with _accounts() as accounts:
        accounts.remove_member(org, user)
    console.print(f"removed {escape(user)} from {escape(org)}")


@token_app.command("create")
def token_create(
    user: Annotated[str, typer.Argument(help="The user the token acts as.")],
    scope: ScopeOpt = None,
    name: Annotated[str, typer.Option("--name", help="What the token is for (shown by token ls).")] = "",
    expires_days: Annotated[
        int | None, typer.Option("--expires-days", min=1, help="Expire after this many days.")
    ] = None,
    json_output: JsonFlag = False,
) -> None:
    """Create a token and print it, once: only its hash is stored."""
    expires = timedelta(days=expires_days) if expires_days is not None else None
    with _accounts() as accounts:
        new = accounts.create_token(user, scope or ["write"], name=name, expires_in=expires)
    _show_token(new, json_output)


@token_app.command("ls")
def token_ls(
    user: Annotated[str | None, typer.Argument(help="Only this user's tokens.")] = None,
    json_output: JsonFlag = False,
) -> None:
    """List tokens by public prefix: scopes, expiry, revocation, last use. Never the tokens."""
    with _accounts() as accounts:
        found = accounts.tokens(user)

    def human() -> None:
        table = Table("prefix", "user", "scopes", "name", "expires", "revoked", "last used", box=None)
        for t in found:
            table.add_row(
                t.prefix,
                escape(t.user),
                " ".join(t.scopes),
                escape(t.name),
                f"{t.expires_at:%Y-%m-%d %H:%M}" if t.expires_at else "-",
                f"{t.revoked_at:%Y-%m-%d %H:%M}" if t.revoked_at else "-",
                f"{t.last_used_at:%Y-%m-%d %H:%M}" if t.last_used_at else "never",
            )
        console.print(table if found else "no tokens")

    emit(found, json_output, human)


@token_app.command("revoke")
def token_revoke(
    prefix: Annotated[str, typer.Argument(help="The token's prefix, as `token ls` shows it.")],
) -> None:
    """Revoke a token: the next request that carries it gets 401."""
    with _accounts() as accounts:
        info = accounts.revoke(prefix)
    console.print(f"revoked token {info.prefix} of {escape(info.user)}")


@app.command()
def visibility(
    repo: Annotated[str, typer.Argument(help="NAMESPACE/NAME.")],
    value: Annotated[str, typer.Argument(help="public (anyone may read) or private (members only).")],
) -> None:
    """Make a repo public or private (new repos are private); recorded in the audit log."""
    from fmstack.server.access import Principal
    from fmstack.server.app import open_hub
    from fmstack.server.visibility import set_visibility

    settings = ServerSettings()
    hub, accounts = open_hub(settings)
    try:
        set_visibility(hub, repo, value)
        who = Principal(user=f"{settings.hub.user} (server CLI)")
        accounts.audit(who, "visibility", repo, {"visibility": value}, "cli")
    finally:
        hub.close()
    console.print(f"{escape(repo)} is now {value}")


@app.command()
def audit(
    limit: Annotated[int, typer.Option("--limit", "-n", min=1, help="How many of the latest entries.")] = 50,
    actor: Annotated[str | None, typer.Option("--actor", help="Only writes by this user.")] = None,
    target: Annotated[
        str | None, typer.Option("--target", help="Only writes to targets starting so (NS/NAME).")
    ] = None,
    json_output: JsonFlag = False,
) -> None:
    """The audit log of writes: who pushed, tagged, untagged, deleted what, when, with which token."""
    with _accounts() as accounts:
        entries = accounts.audit_log(limit=limit, actor=actor, target=target)

    def human() -> None:
        table = Table("when", "who", "token", "action", "target", "from", box=None)
        for e in entries:
            table.add_row(
                f"{e.at:%Y-%m-%d %H:%M:%S}",
                escape(e.actor),
                e.token_prefix,
                e.action,
                escape(e.target),
                e.source,
            )
        console.print(table if entries else "no writes recorded yet")

    emit(entries, json_output, human)


def _show_token(new: NewToken, json_output: bool) -> None:
    if json_output:
        emit(
            {"token": new.token, "user": new.info.user, "prefix": new.info.prefix, "scopes": new.info.scopes},
            True,
            lambda: None,
        )
        return
    console.print(new.token, highlight=False, soft_wrap=True)
    err_console.print(
        f"token {new.info.prefix} for {escape(new.info.user)} ({' '.join(new.info.scopes)}): "
        "shown once, store it now (`fmstack login URL` reads it from stdin)"
    )
