"""The one place where errors become HTTP answers: ``{"error": TYPE, "message": TEXT}`` with a status
per error type. Messages never quote a token or an Authorization header (the server never puts one
in a message). Anything that is not an ``FmstackError`` is a bug: 500, with nothing of it in the body.
"""

from __future__ import annotations

import logging
from typing import cast

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from starlette.requests import Request
from starlette.responses import JSONResponse

from fmstack.errors import (
    Conflict,
    FmstackError,
    Forbidden,
    IntegrityError,
    InvalidInput,
    NotFound,
    Unauthorized,
    Unavailable,
    Unsupported,
)
from fmstack.server.ratelimit import TooManyFailures

log = logging.getLogger("fmstack.server")


class UploadTooLarge(InvalidInput):
    """A file or request body over ``max_upload_bytes``."""


# Most specific first: the first matching class decides the status.
STATUS: tuple[tuple[type[FmstackError], int], ...] = (
    (UploadTooLarge, 413),
    (TooManyFailures, 429),
    (Unauthorized, 401),
    (Forbidden, 403),
    (NotFound, 404),
    (Conflict, 409),
    (IntegrityError, 422),
    (InvalidInput, 422),
    (Unsupported, 422),
    (Unavailable, 503),
)


def status_of(exc: FmstackError) -> int:
    return next((status for kind, status in STATUS if isinstance(exc, kind)), 400)


def error_response(exc: FmstackError) -> JSONResponse:
    headers: dict[str, str] = {}
    if isinstance(exc, Unauthorized):
        headers["WWW-Authenticate"] = "Bearer"
    if isinstance(exc, TooManyFailures):
        headers["Retry-After"] = str(exc.retry_after_s)
    body = {"error": type(exc).__name__, "message": str(exc)}
    return JSONResponse(body, status_code=status_of(exc), headers=headers)


def install(app: FastAPI) -> None:
    async def on_fmstack_error(_request: Request, exc: Exception) -> JSONResponse:
        return error_response(cast(FmstackError, exc))  # registered for FmstackError only

    async def on_validation_error(_request: Request, exc: Exception) -> JSONResponse:
        errors = cast(RequestValidationError, exc).errors()[:10]
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg', '')}" for e in errors
        )
        return error_response(InvalidInput(f"bad request: {problems}"))

    async def on_bug(request: Request, exc: Exception) -> JSONResponse:
        log.error("internal error on %s %s", request.method, request.url.path, exc_info=exc)
        return JSONResponse({"error": "InternalError", "message": "internal error; see the server log"}, 500)

    app.add_exception_handler(FmstackError, on_fmstack_error)
    app.add_exception_handler(RequestValidationError, on_validation_error)
    app.add_exception_handler(Exception, on_bug)
