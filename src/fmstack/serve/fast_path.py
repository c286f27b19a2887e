"""The fast path of the inference routes: answered without FastAPI's router.

On the way to a handler FastAPI scans its routes, builds a ``Request`` for its dependency solver, and
passes its exception middleware and exit stack: about a third of the event loop's time per inference
request under load (measured in ``bench/README.md``, serving). On a small machine that time is taken
from the model.

``InferenceRoutes`` is the app's innermost middleware: the body limit and the metrics still wrap
it. It matches the three inference paths itself and calls the very handlers the FastAPI routes
declare. Errors go through the app's own error handlers (``ErrorHandlers``), the ones FastAPI uses
for every other route. The routes stay declared on the FastAPI app, because that is where ``/docs``
and ``/openapi.json`` come from. Any other request (another path, another method) goes on to FastAPI.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Mapping

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from fmstack.serve.routers import classify, embeddings, kserve

Handler = Callable[[Request, re.Match[str]], Awaitable[Response]]
ErrorHandler = Callable[[Request, Exception], Awaitable[Response]]
ErrorHandlers = Mapping[type[Exception], ErrorHandler]

# POST routes only; each path is matched whole, the first match wins.
ROUTES: list[tuple[re.Pattern[str], Handler]] = [
    (re.compile(r"/v1/embeddings"), lambda request, _: embeddings.embeddings(request)),
    (re.compile(r"/v1/classify"), lambda request, _: classify.classify(request)),
    (
        re.compile(r"/v2/models/(?P<name>.+)/versions/(?P<version>[^/]+)/infer"),
        lambda request, m: kserve.infer_version(m["name"], m["version"], request),
    ),
    (re.compile(r"/v2/models/(?P<name>.+)/infer"), lambda request, m: kserve.infer(m["name"], request)),
]


class InferenceRoutes:
    def __init__(self, app: ASGIApp, errors: ErrorHandlers) -> None:
        self.app = app
        self.errors = errors

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST":
            for pattern, handler in ROUTES:
                match = pattern.fullmatch(scope["path"])
                if match is not None:
                    await self._answer(handler, match, scope, receive, send)
                    return
        await self.app(scope, receive, send)

    async def _answer(
        self, handler: Handler, match: re.Match[str], scope: Scope, receive: Receive, send: Send
    ) -> None:
        request = Request(scope, receive)
        try:
            response = await handler(request, match)
        except Exception as exc:
            on_error = next((h for cls, h in self.errors.items() if isinstance(exc, cls)), None)
            if on_error is None:
                raise  # a bug: the server's error middleware answers 500 and logs it
            response = await on_error(request, exc)
        await response(scope, receive, send)
