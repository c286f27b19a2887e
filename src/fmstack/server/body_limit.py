"""The cap on request bodies that are read whole (JSON: manifests, cards, run records), as an ASGI
middleware in front of every route.

FastAPI reads a JSON body into memory before any dependency runs, the token check included, so
without a cap anyone, anonymous or not, could make a server process hold gigabytes per request. A
body declared (``Content-Length``) over ``max_bytes`` is answered 413 before a byte is read; a body
sent without a length (chunked) is counted as it arrives and cut off at the cap with the same 413.
Blob uploads stream to disk in bounded chunks under their own limit (``uploads.py``), so their paths
are exempt.
"""

from __future__ import annotations

from collections.abc import Callable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from fmstack.server.http_errors import UploadTooLarge, error_response

UPLOAD_PREFIX = "/api/v1/uploads/"


def streams_its_body(path: str) -> bool:
    """Routes that stream their body to disk with their own size checks."""
    return path.startswith(UPLOAD_PREFIX)


class BodyLimit:
    def __init__(
        self, app: ASGIApp, max_bytes: int, exempt: Callable[[str], bool] = streams_its_body
    ) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.exempt = exempt

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self.exempt(scope["path"]):
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None and declared > self.max_bytes:
            await self._refuse(scope, receive, send)
            return
        await self._counted(scope, receive, send)

    async def _counted(self, scope: Scope, receive: Receive, send: Send) -> None:
        received = 0
        refused = False
        started = False

        async def counting_receive() -> Message:
            nonlocal received, refused
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes and not refused:
                    refused = True
                    if not started:
                        await self._refuse(scope, receive, send)
                    # The application sees a client that went away and stops reading.
                    return {"type": "http.disconnect"}
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if refused:
                return  # our 413 went out; whatever the application answers to the cut-off is dropped
            started = True
            await send(message)

        await self.app(scope, counting_receive, guarded_send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        too_large = UploadTooLarge(
            f"the request body is over this server's limit of {self.max_bytes:,} bytes for JSON requests "
            "(`fmstack server start --max-body-bytes`); files travel through /api/v1/uploads"
        )
        response = error_response(too_large)
        response.headers["Connection"] = "close"  # the rest of the body is not read
        await response(scope, receive, send)


def _content_length(scope: Scope) -> int | None:
    for key, value in scope["headers"]:
        if key == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None  # the HTTP server refuses it before we get here
    return None
