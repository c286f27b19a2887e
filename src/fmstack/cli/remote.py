"""``fmstack login URL``, ``logout``, ``whoami``: which hub server this machine uses, and as whom; and
``open_hub()``, which hands commands the remote hub when one is selected, else the local one."""

from __future__ import annotations

import sys
from typing import Annotated

import typer
from rich.markup import escape

from fmstack.cli.output import JsonFlag, console, emit
from fmstack.errors import InvalidInput
from fmstack.hub import Hub, HubApi
from fmstack.server import credentials
from fmstack.server.client import HubClient
from fmstack.server.remote import RemoteHub
from fmstack.settings import Settings


def login(
    url: Annotated[str, typer.Argument(help="The hub server, e.g. https://hub.example.com.")],
    token_stdin: Annotated[
        bool, typer.Option("--token-stdin", help="Read the token from stdin instead of prompting.")
    ] = False,
    json_output: JsonFlag = False,
) -> None:
    """Check a token against a hub server and store both (FMSTACK_HOME/credentials.json, mode 0600)."""
    url = credentials.normalise_url(url)
    token = sys.stdin.readline().strip() if token_stdin else typer.prompt("token", hide_input=True).strip()
    if not token:
        raise InvalidInput("no token given: create one with `fmstack server token create USER` on the server")
    with HubClient(url, token) as client:
        who = client.whoami()  # a wrong token is refused here, before anything is stored
    settings = Settings.from_env()
    path = credentials.save(settings.home, credentials.Credentials(url, token))
    emit(
        {"url": url, "user": who["user"], "credentials": str(path)},
        json_output,
        lambda: console.print(f"logged in to {escape(url)} as {escape(str(who['user']))}"),
    )


def logout(json_output: JsonFlag = False) -> None:
    """Forget the stored hub server and token."""
    removed = credentials.remove(Settings.from_env().home)
    message = "logged out" if removed else "not logged in"
    emit({"logged_out": removed}, json_output, lambda: console.print(message))


def whoami(json_output: JsonFlag = False) -> None:
    """Who the hub server takes this machine's token for."""
    found = credentials.logged_in(Settings.from_env())
    with HubClient(found.url, found.token or None) as client:
        who = client.whoami()
    who["url"] = found.url

    def human() -> None:
        user = who["user"] or "anonymous"
        orgs = ", ".join(f"{k} ({v})" for k, v in sorted(who["orgs"].items())) or "none"
        console.print(
            f"{escape(str(user))} on {escape(found.url)}; scopes {' '.join(who['scopes']) or '-'}; orgs {escape(orgs)}"
        )

    emit(who, json_output, human)


def open_hub() -> HubApi:
    """The hub a command works on: the server FMSTACK_HUB_URL (or ``--hub URL``) names, with its
    token, else the local hub of FMSTACK_HOME. Commands call the same methods on either."""
    settings = Settings.from_env()
    found = credentials.remote(settings)
    if found is None:
        return Hub(settings)
    return RemoteHub.connect(settings, found.url, found.token or None)
