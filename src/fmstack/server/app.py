"""``create_app(settings)``: the hub server's FastAPI application.

The hub is opened here, once per process, and kept at ``app.state.hub`` (with the accounts at
``app.state.accounts``); it is closed when the application shuts down. Each resource has its router in
``routes/``; errors become HTTP answers in ``http_errors.py``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from fmstack import __version__
from fmstack.hub import Hub
from fmstack.server import dashboard, hf_api, http_errors
from fmstack.server.accounts import Accounts
from fmstack.server.body_limit import BodyLimit
from fmstack.server.db import SERVER_MIGRATIONS
from fmstack.server.federation import routes as federation_routes
from fmstack.server.ratelimit import FailureLimiter
from fmstack.server.routes import accounts, edge, metadata, repos, runs, transfer
from fmstack.server.settings import ServerSettings
from fmstack.server.uploads import Uploads


def open_hub(settings: ServerSettings) -> tuple[Hub, Accounts]:
    """The hub with the server's tables current, and the accounts on its database."""
    hub = Hub(settings.hub)
    try:
        lock_dir = settings.hub.home if hub.engine.dialect.name == "sqlite" else None
        SERVER_MIGRATIONS.migrate(hub.engine, lock_dir)
    except BaseException:
        hub.close()
        raise
    return hub, Accounts(hub.engine)


def create_app(settings: ServerSettings | None = None) -> FastAPI:
    settings = settings or ServerSettings()
    hub, accounts_store = open_hub(settings)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        try:
            yield
        finally:
            hub.close()

    app = FastAPI(title="fmstack hub", version=__version__, lifespan=lifespan)
    app.state.settings = settings
    app.state.hub = hub
    app.state.accounts = accounts_store
    app.state.failures = FailureLimiter(settings.max_failed_auth)
    app.state.uploads = Uploads(
        settings.hub.home / "server-uploads", hub.blobs, settings.max_upload_bytes, settings.max_pending_bytes
    )
    app.state.uploads.sweep()  # pushes given up on long ago
    http_errors.install(app)
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes)
    app.include_router(accounts.router)
    app.include_router(repos.router)
    app.include_router(transfer.router)
    app.include_router(metadata.router)
    app.include_router(runs.router)
    app.include_router(federation_routes.router)
    app.include_router(edge.router)
    dashboard.install(app, settings)  # pages at /, /repos/..., /runs..., /admin...: none an API or HF path
    app.include_router(hf_api.router)  # last: its /{ns}/{name}/resolve/... paths are the widest
    return app


def app_from_worker_env() -> FastAPI:
    """The factory uvicorn calls in each worker process of ``fmstack server start --workers N``."""
    return create_app(ServerSettings.from_worker_env())
