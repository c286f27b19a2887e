"""The web dashboard of the hub server: server-rendered pages at ``/`` (Jinja2 templates, SVG charts,
no JavaScript and nothing from a CDN), with the same accounts, tokens and access rules as the API.

``install(app)`` adds it to the server's application; its paths (``/``, ``/login``, ``/logout``,
``/repos/...``, ``/runs...``, ``/admin...``, ``/-/static/...``) are disjoint from ``/api/...`` and from the
Hugging Face paths (``/{ns}/{name}/resolve/...``, ``/datasets/...``), whatever the route order.
See docs/dashboard.md.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from starlette.staticfiles import StaticFiles

from fmstack.server.dashboard import admin, login, pages
from fmstack.server.dashboard.datasets import DatasetViews
from fmstack.server.dashboard.sessions import load_key
from fmstack.server.dashboard.web import DashboardState
from fmstack.server.settings import ServerSettings

STATIC = Path(__file__).parent / "static"


def install(app: FastAPI, settings: ServerSettings) -> None:
    app.state.dashboard = DashboardState(key=load_key(settings.hub.home), datasets=DatasetViews())
    app.include_router(login.router)
    app.include_router(admin.router)
    app.include_router(pages.router)
    app.mount("/-/static", StaticFiles(directory=STATIC), name="dashboard-static")
