"""What one running server holds: its settings, models, metrics and lifecycle flags."""

from __future__ import annotations

from dataclasses import dataclass

from starlette.requests import Request

from fmstack.serve.metrics import ServeMetrics
from fmstack.serve.models import ModelSet
from fmstack.serve.prediction_log import PredictionLog
from fmstack.serve.settings import ServeSettings


@dataclass(eq=False)
class ServerState:
    settings: ServeSettings
    models: ModelSet
    metrics: ServeMetrics
    draining: bool = False  # set on SIGTERM: /readyz answers 503 while in-flight requests finish
    load_error: str | None = None  # why loading failed; the server then exits
    predictions: PredictionLog | None = None  # the prediction log, with --log-predictions

    @property
    def ready(self) -> bool:
        return self.models.ready and not self.draining and self.load_error is None


def state_of(request: Request) -> ServerState:
    """The state of the app that received the request."""
    state: ServerState = request.app.state.server
    return state


async def server_state(request: Request) -> ServerState:
    """FastAPI dependency: ``state_of`` the request. ``async`` on purpose: FastAPI runs a plain
    ``def`` dependency in its thread pool, a thread hop per request."""
    return state_of(request)
