"""Running the app: in the foreground with graceful SIGTERM (``run``), or in a background thread for
Python callers such as ``fmstack demo`` and tests (``start_server``).

On SIGTERM the server marks itself draining (``/readyz`` answers 503), accepts the connections already
queued (and new ones until none has come for 0.1 s, at most 1 s), stops accepting, lets in-flight
requests finish for up to ``drain_timeout_s``, unloads the models and returns; the
process then exits 0. A second SIGINT (Ctrl+C) forces the exit.
"""

from __future__ import annotations

import asyncio
import errno
import gc
import logging
import signal
import socket
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from types import FrameType, TracebackType
from typing import Literal

import httpx
import uvicorn
from prometheus_client.registry import Collector

from fmstack.errors import FmstackError, InvalidInput
from fmstack.hub import HubApi
from fmstack.serve.app import create_app
from fmstack.serve.models import LoadFn
from fmstack.serve.settings import ServeSettings
from fmstack.serve.state import ServerState
from fmstack.settings import Settings

log = logging.getLogger("fmstack.serve")


class ServeFailed(FmstackError):
    """The server could not start: its models failed to load or it did not become ready in time."""


# On shutdown, how long without a new connection means the backlog is empty, and the most time spent
# accepting before the listening socket closes.
_QUIET_S = 0.1
_ACCEPT_MAX_S = 1.0


class _DrainingServer(uvicorn.Server):
    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.fatal: str | None = None

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        state: ServerState | None = getattr(self.config.app.state, "server", None)  # type: ignore[union-attr]
        if state is not None:
            state.draining = True
        super().handle_exit(sig, frame)

    def stop_fatal(self, reason: str) -> None:
        self.fatal = reason
        self.should_exit = True

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        if self.fatal is None:
            await self._accept_until_quiet()
        await super().shutdown(sockets)

    async def _accept_until_quiet(self) -> None:
        """Closing the listening socket resets every connection still queued in its backlog: clients
        that connected just before SIGTERM would read "connection reset". Keep accepting (``/readyz``
        answers 503 to whoever asks, so balancers take this replica out) until no connection has come
        for ``_QUIET_S``, for at most ``_ACCEPT_MAX_S`` (or the drain timeout)."""
        loop = asyncio.get_running_loop()
        end = loop.time() + min(_ACCEPT_MAX_S, self.config.timeout_graceful_shutdown or 0)
        state = self.server_state
        seen, answered = set(map(id, state.connections)), state.total_requests
        quiet_from = loop.time()
        while loop.time() < end and loop.time() - quiet_from < _QUIET_S and not self.force_exit:
            await asyncio.sleep(0.02)
            now = set(map(id, state.connections))
            # A connection may come and go between two looks: the count of answers sees it too.
            if now - seen or state.total_requests != answered:
                seen, answered = seen | now, state.total_requests
                quiet_from = loop.time()


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP explicitly: asyncio turns Nagle's algorithm off (TCP_NODELAY) only on sockets whose
    # proto says TCP, and with Nagle on, a keep-alive response written as headers + body stalls 40 ms
    # on the client's delayed ACK.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        if isinstance(exc, socket.gaierror) or exc.errno == errno.EADDRNOTAVAIL:
            way_out = "use an address of this machine for --host (0.0.0.0: all of them)"
        else:
            way_out = "pick another --port"
        raise InvalidInput(f"cannot listen on {host}:{port}: {exc.strerror}; {way_out}") from None
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


Loop = Literal["auto", "asyncio", "uvloop"]


def _server(
    settings: ServeSettings,
    hub_settings: Settings | None,
    log_level: str,
    load: LoadFn | None = None,
    loop: Loop = "auto",
    on_loaded: Callable[[], None] | None = None,
    open_hub: Callable[[], HubApi] | None = None,
    collectors: Sequence[Collector] = (),
) -> tuple[_DrainingServer, socket.socket]:
    holder: list[_DrainingServer] = []
    app = create_app(
        settings,
        hub_settings,
        load=load,
        on_fatal=lambda reason: holder[0].stop_fatal(reason),
        on_loaded=on_loaded,
        open_hub=open_hub,
        collectors=collectors,
    )
    config = uvicorn.Config(
        app,
        log_level=log_level,
        timeout_graceful_shutdown=int(settings.drain_timeout_s),
        access_log=False,
        lifespan="on",
        loop=loop,  # auto: uvloop when installed
    )
    server = _DrainingServer(config)
    holder.append(server)
    return server, _bind(settings.host, settings.port)


def run(
    settings: ServeSettings,
    hub_settings: Settings | None = None,
    log_level: str = "info",
    open_hub: Callable[[], HubApi] | None = None,
    collectors: Sequence[Collector] = (),
) -> None:
    """Serve in the foreground until SIGTERM/SIGINT; returns normally after draining. ``open_hub``,
    ``collectors``: as ``create_app``'s (the hub the versions come from, when not the local one).

    Raises ``ServeFailed`` if the models could not be loaded."""
    server, sock = _server(
        settings, hub_settings, log_level, on_loaded=_freeze_heap, open_hub=open_hub, collectors=collectors
    )
    host, port = sock.getsockname()[:2]
    log.info("listening on http://%s:%d (models load in the background; /readyz says when ready)", host, port)
    # uvicorn re-raises the signal it caught once it has shut down, so that a default handler would
    # kill the process; handling SIGTERM here makes a drained shutdown end as a normal return (exit 0).
    previous = signal.signal(signal.SIGTERM, lambda _sig, _frame: None)
    try:
        server.run(sockets=[sock])
    finally:
        signal.signal(signal.SIGTERM, previous)
        sock.close()
    if server.fatal is not None:
        raise ServeFailed(f"cannot serve: {server.fatal}")


def _freeze_heap() -> None:
    """Once the models are loaded, what is alive (modules, models, settings) lives as long as the
    process: move it out of the garbage collector's reach. Its full collections then scan only what
    requests made since, instead of stopping the event loop for tens of milliseconds every few seconds
    (under load, the slowest 1 % of requests were those caught in such a pause: bench/README.md). Only for a process
    that is the server (``run``): a frozen object is never collected, even once garbage."""
    gc.collect()
    gc.freeze()


@dataclass
class RunningServer:
    """A server running in a background thread of this process; use as a context manager."""

    url: str
    port: int
    _server: _DrainingServer
    _thread: threading.Thread
    _socket: socket.socket

    @property
    def state(self) -> ServerState:
        """The running app's state (models, metrics, flags), for inspection from Python."""
        state: ServerState = self._server.config.app.state.server  # type: ignore[union-attr]
        return state

    def wait_ready(self, timeout_s: float = 120.0) -> None:
        """Block until ``/readyz`` answers 200; raise ``ServeFailed`` if loading failed or took too long."""
        deadline = time.monotonic() + timeout_s
        with httpx.Client(base_url=self.url, timeout=5.0) as client:
            while time.monotonic() < deadline:
                if self._server.fatal is not None or not self._thread.is_alive():
                    raise ServeFailed(f"the server stopped: {self._server.fatal or 'see its log'}")
                try:
                    if client.get("/readyz").status_code == 200:
                        return
                except httpx.TransportError:
                    pass  # not listening yet
                time.sleep(0.05)
        raise ServeFailed(f"the server at {self.url} was not ready after {timeout_s:.0f} s")

    def stop(self) -> None:
        """Drain in-flight requests (up to the drain timeout), unload the models and join the thread."""
        state: ServerState | None = getattr(self._server.config.app.state, "server", None)  # type: ignore[union-attr]
        if state is not None:
            state.draining = True
        self._server.should_exit = True
        self._thread.join()
        self._socket.close()

    def __enter__(self) -> RunningServer:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def start_server(
    settings: ServeSettings,
    hub_settings: Settings | None = None,
    *,
    wait: bool = True,
    timeout_s: float = 120.0,
    log_level: str = "warning",
    load: LoadFn | None = None,
    loop: Loop = "auto",
) -> RunningServer:
    """Start a server in a background thread (``settings.port`` 0 picks a free port) and, by default,
    wait until its models are loaded. Stop it with ``.stop()`` or a ``with`` block. ``load`` replaces
    how a ref becomes a runtime (see ``create_app``); ``loop`` picks the event loop (``auto``: uvloop
    when installed)."""
    server, sock = _server(settings, hub_settings, log_level, load, loop)
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [sock]}, name="fmstack-serve", daemon=True
    )
    thread.start()
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    running = RunningServer(f"http://{shown}:{port}", port, server, thread, sock)
    if wait:
        try:
            running.wait_ready(timeout_s)
        except BaseException:
            running.stop()
            raise
    return running
