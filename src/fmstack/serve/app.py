"""``create_app(settings)``: the inference server as a FastAPI app.

The lifespan owns every long-lived thing: the hub connection, the models (loaded in the background so
``/healthz`` answers at once and ``/readyz`` says when they are ready), one batch worker per model, and
the alias follower for hot swaps. Errors are mapped to HTTP here, once: OpenAI-style bodies under
``/v1``, ``{"error": ...}`` under ``/v2`` (the KServe protocol's form).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from prometheus_client.registry import Collector
from starlette.exceptions import HTTPException

from fmstack import __version__
from fmstack.errors import (
    Conflict,
    FmstackError,
    InvalidInput,
    NotFound,
    Unauthorized,
    Unavailable,
    Unsupported,
)
from fmstack.hub import Hub, HubApi
from fmstack.serve.auth import ApiKeys, key_checkers
from fmstack.serve.errors import (
    BodyTimeout,
    BodyTooLarge,
    ClientDisconnected,
    DeadlineExceeded,
    InputTooLarge,
    ModelNotReady,
    NotJSON,
    QueueFull,
    WrongHost,
    clip,
)
from fmstack.serve.fast_path import ErrorHandlers, InferenceRoutes
from fmstack.serve.metrics import MetricsMiddleware, ServeMetrics
from fmstack.serve.models import LoadFn, ModelSet, batch_limits, hub_loader
from fmstack.serve.payloads import error_body
from fmstack.serve.prediction_log import open_log
from fmstack.serve.request_limits import RequestLimits
from fmstack.serve.routers import classify, embeddings, health, kserve, metrics, models, search
from fmstack.serve.routers import feedback as feedback_router
from fmstack.serve.schemas import INFERENCE_ERRORS, error_responses
from fmstack.serve.settings import ServeSettings
from fmstack.serve.state import ServerState
from fmstack.settings import Settings

log = logging.getLogger("fmstack.serve")

# Most specific first: InputTooLarge is an InvalidInput.
_STATUS: list[tuple[type[FmstackError], int, str]] = [
    (QueueFull, 429, "rate_limit_exceeded"),
    (DeadlineExceeded, 504, "timeout"),
    (BodyTimeout, 408, "timeout"),
    (InputTooLarge, 413, "invalid_request_error"),
    (WrongHost, 421, "invalid_request_error"),
    (NotJSON, 415, "invalid_request_error"),
    (ModelNotReady, 503, "server_unavailable"),
    (ClientDisconnected, 499, "client_closed_request"),
    (NotFound, 404, "not_found_error"),
    (Unauthorized, 401, "invalid_request_error"),
    (InvalidInput, 422, "invalid_request_error"),
    (Unsupported, 400, "invalid_request_error"),
    (Conflict, 409, "conflict_error"),
    (Unavailable, 503, "server_unavailable"),
]


def create_app(
    settings: ServeSettings,
    hub_settings: Settings | None = None,
    *,
    load: LoadFn | None = None,
    on_fatal: Callable[[str], None] | None = None,
    on_loaded: Callable[[], None] | None = None,
    open_hub: Callable[[], HubApi] | None = None,
    collectors: Sequence[Collector] = (),
) -> FastAPI:
    """The server for ``settings.models``. ``hub_settings`` defaults to the environment's hub;
    ``open_hub`` opens another hub instead (the CLI's: a remote hub when one is selected, which this
    layer cannot know of);
    ``load`` replaces how a ref becomes a runtime (tests); ``on_fatal`` is told when the models
    cannot be loaded, so the process running the app can stop, and ``on_loaded`` when they are
    (``serve.server`` passes both); ``collectors`` add series to ``/metrics`` (the monitor's gauges,
    which this layer cannot compute)."""
    metrics_ = ServeMetrics()
    for collector in collectors:
        metrics_.registry.register(collector)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        hub = open_hub() if open_hub is not None else Hub(hub_settings or Settings.from_env())
        state = ServerState(
            settings,
            ModelSet(settings, load or hub_loader(hub, settings.threads, batch_limits(settings)), metrics_),
            metrics_,
        )
        app.state.server = state
        state.predictions = await open_log(settings, hub.settings.home, metrics_.registry)
        background = [asyncio.create_task(_load(state, on_fatal, on_loaded))]
        if settings.poll_aliases_s > 0:
            background.append(asyncio.create_task(_follow_aliases(state, hub)))
        try:
            yield
        finally:
            state.draining = True
            for task in background:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            await state.models.close()
            if state.predictions is not None:
                await asyncio.to_thread(state.predictions.close)  # what is queued is written first
            hub.close()

    app = FastAPI(
        title="fmstack serve",
        version=__version__,
        summary="Batched inference for hub models: OpenAI embeddings, classification, KServe v2.",
        lifespan=lifespan,
        # FastAPI's native OpenTelemetry looks up the global providers on every request, even when
        # none is configured: about a tenth of the event loop's time per inference request.
        telemetry=None if settings.opentelemetry else {"tracing": False, "metrics": False, "logs": False},
    )
    for router in (
        health.router,
        metrics.router,
        models.router,
        embeddings.router,
        classify.router,
        feedback_router.router,
        search.router,
    ):
        app.include_router(router)
    # KServe's module declares its routes' successes; the statuses its errors map to (here) are
    # documented for all of them at once, in KServe's error shape: a superset for its GET routes.
    app.include_router(kserve.router, responses=error_responses(*INFERENCE_ERRORS, kserve=True))
    for error, handler in _ERROR_HANDLERS.items():
        app.add_exception_handler(error, handler)
    app.add_middleware(InferenceRoutes, errors=_ERROR_HANDLERS)  # innermost: inside metrics and limit
    checkers = key_checkers(settings)  # InvalidInput for an unusable --api-key-file: no server starts
    if checkers:  # inside metrics (refusals are counted), outside the inference routes
        app.add_middleware(ApiKeys, checkers=checkers, on_error=_fmstack_error)
    app.add_middleware(MetricsMiddleware, metrics=metrics_)
    app.add_middleware(RequestLimits, settings=settings)  # outermost: before any work
    return app


async def _load(
    state: ServerState, on_fatal: Callable[[str], None] | None, on_loaded: Callable[[], None] | None
) -> None:
    try:
        await state.models.load_all()
    except Exception as exc:  # a model that cannot load makes the server useless: say why and stop
        state.load_error = f"{type(exc).__name__}: {exc}" if not isinstance(exc, FmstackError) else str(exc)
        log.error("cannot load the models: %s", state.load_error)
        if on_fatal is not None:
            on_fatal(state.load_error)
        return
    if on_loaded is not None:
        on_loaded()


async def _follow_aliases(state: ServerState, hub: HubApi) -> None:
    last_problem: str | None = None  # logged once, not at every poll
    while True:
        await asyncio.sleep(state.settings.poll_aliases_s)
        if not state.models.ready:
            continue
        try:
            await state.models.refresh(hub.resolve)
            last_problem = None
        except Exception as exc:  # the old version keeps serving; try again at the next poll
            problem = f"{type(exc).__name__}: {exc}"
            if problem != last_problem:
                log.error(
                    "checking served aliases failed; still serving the loaded versions: %s",
                    problem,
                    exc_info=not isinstance(exc, FmstackError),
                )
            last_problem = problem


async def _fmstack_error(request: Request, exc: FmstackError) -> JSONResponse:
    status, kind = next(
        ((s, k) for cls, s, k in _STATUS if isinstance(exc, cls)), (400, "invalid_request_error")
    )
    headers = None
    if isinstance(exc, QueueFull):
        headers = {"Retry-After": str(exc.retry_after_s)}
    elif isinstance(exc, (BodyTooLarge, BodyTimeout)):
        headers = {"Connection": "close"}  # the rest of the body is not worth reading
    return JSONResponse(error_body(request.url.path, str(exc), kind, status), status, headers=headers)


async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
    problems = "; ".join(
        f"{'.'.join(str(p) for p in e.get('loc', ()) if p != 'body') or 'body'}: {e.get('msg')}"
        for e in exc.errors()
    )
    message = f"invalid request body: {problems}"
    return JSONResponse(error_body(request.url.path, message, "invalid_request_error", 422), 422)


async def _http_error(request: Request, exc: HTTPException) -> JSONResponse:
    """Starlette's own errors (no such path: 404; a path without this method: 405) in our shapes."""
    kind = "not_found_error" if exc.status_code == 404 else "invalid_request_error"
    body = error_body(
        request.url.path, f"{exc.detail}: {request.method} {clip(request.url.path)}", kind, exc.status_code
    )
    return JSONResponse(body, exc.status_code, headers=exc.headers)


_ERROR_HANDLERS: ErrorHandlers = {
    FmstackError: _fmstack_error,  # type: ignore[dict-item]
    RequestValidationError: _validation_error,  # type: ignore[dict-item]
    HTTPException: _http_error,  # type: ignore[dict-item]
}
