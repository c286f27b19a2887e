"""What a request may cost before any handler sees it: the host it names, the size of its body and the
time the body takes to arrive.

``RequestLimits`` is the app's outermost middleware. It refuses a Host header that ``--allowed-hosts``
does not list (421: a page on another site reaching a local server through DNS rebinding names its
own host; health probes are exempt) and a body declared over ``--max-body-bytes`` (413) before reading anything. Every body is
then read through ``BodyReader``, which counts bytes as they arrive (a chunked body declares no
length) and bounds the whole read by ``--body-timeout``; a handler's ``await request.body()`` fails
with ``BodyTooLarge`` (413) or ``BodyTimeout`` (408), answered like any other error.
"""

from __future__ import annotations

import asyncio

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from fmstack.serve.errors import BodyTimeout, BodyTooLarge
from fmstack.serve.payloads import error_body
from fmstack.serve.settings import ServeSettings

# Liveness and readiness probes (a kubelet names the pod's IP as host) tell a page on another site
# nothing worth protecting.
_PROBES = frozenset({"/healthz", "/readyz", "/v2/health/live", "/v2/health/ready"})


class RequestLimits:
    def __init__(self, app: ASGIApp, settings: ServeSettings) -> None:
        self.app = app
        self.max_bytes = settings.max_body_bytes
        self.timeout_s = settings.body_timeout_s
        self.hosts = tuple(h.lower() for h in settings.allowed_hosts)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        refusal = self._refusal(scope["path"], headers)
        if refusal is not None:
            await refusal(scope, receive, send)
            return
        reader = BodyReader(receive, self.max_bytes, self.timeout_s)
        await self.app(scope, reader.receive, send)

    def _refusal(self, path: str, headers: dict[bytes, bytes]) -> JSONResponse | None:
        if self.hosts and path not in _PROBES:
            host = headers.get(b"host", b"").decode("latin-1")
            if not host_allowed(host, self.hosts):
                message = f"this server does not answer for host {host[:100]!r} (--allowed-hosts)"
                return JSONResponse(error_body(path, message, "invalid_request_error", 421), 421)
        length = headers.get(b"content-length")
        if length is not None and length.isdigit() and int(length) > self.max_bytes:
            message = f"request body of {int(length)} bytes is over the limit of {self.max_bytes} (--max-body-bytes)"
            body = error_body(path, message, "invalid_request_error", 413)
            return JSONResponse(body, 413, headers={"Connection": "close"})  # the body is never read
        return None


def host_allowed(host: str, allowed: tuple[str, ...]) -> bool:
    """Whether ``host`` (a Host header: name, IPv4 or [IPv6], maybe with a port) is listed in
    ``allowed``, where ``*.example.com`` stands for example.com's subdomains and ``*`` for any host."""
    name = host.lower()
    if name.startswith("["):  # [::1]:8000
        name = name[: name.find("]") + 1]
    elif name.count(":") == 1:
        name = name.split(":", 1)[0]
    return any(
        pattern == "*"
        or name == pattern
        or (pattern.startswith("*.") and name.endswith(pattern[1:]) and len(name) > len(pattern) - 1)
        for pattern in allowed
    )


class BodyReader:
    """The ASGI ``receive`` of one request, bounded in the bytes and the time its body may take.

    Handlers that check whether the client has gone (``inference._client_gone``) look for the server's
    ``disconnected`` flag behind ``receive``: ``disconnected`` passes it through.
    """

    def __init__(self, receive: Receive, max_bytes: int, timeout_s: float) -> None:
        self._receive = receive
        self._inner = getattr(receive, "__self__", None)
        self._left = max_bytes
        self._max_bytes = max_bytes
        self._timeout_s = timeout_s
        self._deadline = asyncio.get_running_loop().time() + timeout_s
        self._done = False  # the whole body has arrived: later messages can only be a disconnect

    @property
    def disconnected(self) -> bool | None:
        flag = getattr(self._inner, "disconnected", None)
        return flag if isinstance(flag, bool) else None

    async def receive(self) -> Message:
        if self._done:
            return await self._receive()
        if getattr(self._inner, "more_body", None) is False:
            # uvicorn has the whole body already (most requests: it fits in one read), so nothing can
            # wait: skip the timer, most of what this middleware would cost a request (bench/README.md,
            # request limits).
            message = await self._receive()
        else:
            try:
                async with asyncio.timeout_at(self._deadline):
                    message = await self._receive()
            except TimeoutError:
                raise BodyTimeout(
                    f"the request body did not arrive within {self._timeout_s:g} s (--body-timeout)"
                ) from None
        if message["type"] == "http.request":
            self._left -= len(message.get("body", b""))
            if self._left < 0:
                raise BodyTooLarge(
                    f"request body is over the limit of {self._max_bytes} bytes (--max-body-bytes)"
                )
            self._done = not message.get("more_body", False)
        return message
