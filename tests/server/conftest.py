"""A real hub server for tests: ``fmstack server start`` (uvicorn) in a subprocess on a free port, with
its own FMSTACK_HOME and an administrator created as ``fmstack server create-admin`` does.

``hub_server`` yields a running server with the default settings; ``start_hub_server(**options)``
starts more (other flags, several on one database). Each is stopped (SIGTERM, then SIGKILL) at the end.
``app_hub`` is the same application in-process (TestClient), for checks that need no real socket.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from fmstack.errors import Conflict
from fmstack.hub import Hub
from fmstack.server.accounts import Accounts
from fmstack.server.app import create_app, open_hub
from fmstack.server.settings import ServerSettings
from fmstack.settings import Settings
from tests.hub.conftest import postgres_database, s3_store_url

__all__ = ["postgres_database", "s3_store_url"]  # the fixtures, shared with tests/hub

STARTUP_S = 60.0  # a cold start imports FastAPI, SQLAlchemy and Alembic on a busy 2-core machine


@dataclass
class RunningHub:
    url: str
    token: str  # the administrator's admin-scope token
    home: Path
    env: dict[str, str]  # FMSTACK_HOME etc.: run `fmstack server ...` commands on the same hub
    process: subprocess.Popen[bytes]
    log: Path
    admin: str = "admin"
    extra: dict[str, str] = field(default_factory=dict)

    def headers(self, token: str | None = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {token or self.token}"}

    def cli(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run ``fmstack ARGS`` on this server's hub (the commands that manage accounts)."""
        return fmstack(self.env, *args, check=check)

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def fmstack(
    env: dict[str, str], *args: str, check: bool = True, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    run = subprocess.run(
        [sys.executable, "-m", "fmstack", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        input=stdin,
    )
    if check and run.returncode != 0:
        raise AssertionError(f"fmstack {' '.join(args)} exited {run.returncode}: {run.stderr}")
    return run


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def hub_env(home: Path, database_url: str | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FMSTACK_", "HF_"))}
    env["FMSTACK_HOME"] = str(home)
    if database_url is not None:
        env["FMSTACK_DATABASE_URL"] = database_url
    return env


def wait_ready(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + STARTUP_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"the hub server exited {process.returncode}: {log.read_text()[-3000:]}")
        try:
            if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"the hub server did not start in {STARTUP_S} s: {log.read_text()[-3000:]}")


def create_admin(env: dict[str, str], name: str) -> str:
    """What ``fmstack server create-admin --name NAME`` does, on the hub ``env`` names, in this process (an
    interpreter start per server costs more than the rest; tests/server/test_cli.py runs the command).
    Returns the admin token, or "" when the name is taken (a second server on the same database)."""
    hub, accounts = open_hub(ServerSettings(hub=Settings.from_env(env)))
    try:
        accounts.add(name, "user", admin=True)
        return accounts.create_token(name, ["admin"], name="created with create-admin").token
    except Conflict:
        return ""
    finally:
        hub.close()


def launch(
    home: Path,
    *flags: str,
    database_url: str | None = None,
    admin: str | None = "admin",
    port: int | None = None,
    store_url: str | None = None,
) -> RunningHub:
    """Create the administrator (unless ``admin`` is None, or it exists) and start a server."""
    env = hub_env(home, database_url)
    if store_url is not None:
        env["FMSTACK_STORE_URL"] = store_url
    token = "" if admin is None else create_admin(env, admin)
    port = port or free_port()
    log = home.parent / f"server-{port}-{time.monotonic_ns()}.log"
    home.mkdir(parents=True, exist_ok=True)
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "fmstack", "server", "start", "--port", str(port), *flags],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    running = RunningHub(url, token, home, env, process, log, admin or "")
    try:
        wait_ready(url, process, log)
    except BaseException:
        running.stop(signal.SIGKILL)
        raise
    return running


@pytest.fixture
def start_hub_server(tmp_path: Path) -> Iterator[Callable[..., RunningHub]]:
    """``start(*flags, home=None, **options)``: a new server each call (options as in ``launch``)."""
    started: list[RunningHub] = []

    def start(*flags: str, home: Path | None = None, **options: Any) -> RunningHub:
        running = launch(home or tmp_path / f"server-home-{len(started)}", *flags, **options)
        started.append(running)
        return running

    yield start
    for running in started:
        running.stop()


@pytest.fixture
def hub_server(start_hub_server: Callable[..., RunningHub]) -> RunningHub:
    """A running hub server with an administrator (``.token``) on a fresh FMSTACK_HOME."""
    return start_hub_server()


@dataclass
class AppHub:
    """An in-process server (FastAPI's TestClient, no sockets): for the many checks that need no real
    network, at a fraction of a subprocess's start-up time."""

    client: TestClient
    accounts: Accounts
    hub: Hub
    token: str  # the administrator's

    def headers(self, token: str | None = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {token or self.token}"}

    def user(self, name: str, *scopes: str, org: str | None = None, role: str = "read") -> str:
        """Add user ``name`` (and, with ``org``, make them ``role`` in it); return a token for them."""
        self.accounts.add(name, "user")
        if org is not None:
            self.accounts.add_member(org, name, role)
        return self.accounts.create_token(name, list(scopes or ("write",))).token


@pytest.fixture
def app_store_url(tmp_path: Path) -> str:
    """Where ``app_hub`` keeps its blobs; test_transfer.py also runs its tests with them on S3."""
    return str(tmp_path / "app-home" / "blobs")


@pytest.fixture
def app_hub(tmp_path: Path, app_store_url: str) -> Iterator[AppHub]:
    home = tmp_path / "app-home"
    hub = Settings(home=home, database_url=f"sqlite:///{home / 'fmstack.db'}", store_url=app_store_url)
    app = create_app(ServerSettings(hub=hub))
    accounts: Accounts = app.state.accounts
    accounts.add("admin", "user", admin=True)
    token = accounts.create_token("admin", ["admin"]).token
    with TestClient(app) as client:
        yield AppHub(client, accounts, app.state.hub, token)


@pytest.fixture(params=["sqlite", "postgres"])
def server_settings(request: pytest.FixtureRequest, tmp_path: Path) -> ServerSettings:
    """Server settings on a fresh hub on each metadata backend (PostgreSQL as in tests/hub)."""
    home = tmp_path / "backend-home"
    url = f"sqlite:///{home / 'fmstack.db'}"
    if request.param == "postgres":
        url = request.getfixturevalue("postgres_database")
    return ServerSettings(hub=Settings(home=home, database_url=url, store_url=str(home / "blobs")))
