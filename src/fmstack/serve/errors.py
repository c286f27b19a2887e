"""Errors of the inference server that have no place in the library tree: load shedding and time limits.

    QueueFull          the model's queue holds ``max_queue`` texts already      -> HTTP 429 + Retry-After
    DeadlineExceeded   the request waited past its deadline before an answer     -> HTTP 504
    InputTooLarge      too many texts or characters, or a body over the limit   -> HTTP 413
      BodyTooLarge     a body over --max-body-bytes (the connection is closed)   -> HTTP 413
    BodyTimeout        a body that did not arrive within --body-timeout          -> HTTP 408
    NotJSON            a body whose Content-Type is not JSON                     -> HTTP 415
    WrongHost          a Host header that --allowed-hosts does not list          -> HTTP 421
    ModelNotReady      the model is known but not loaded (starting or draining)  -> HTTP 503

A text longer than the model accepts is ``fmstack.errors.InvalidInput`` (HTTP 422), like any bad input.
"""

from __future__ import annotations

import re

from fmstack.errors import FmstackError, InvalidInput


class QueueFull(FmstackError):
    """The model's batch queue is full; retry after ``retry_after_s`` seconds."""

    def __init__(self, message: str, retry_after_s: int) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class DeadlineExceeded(FmstackError):
    """No answer before the request's deadline; the server is overloaded or the limit is too tight."""


class InputTooLarge(InvalidInput):
    """The request is larger than a configured limit (the message names it)."""


class BodyTooLarge(InputTooLarge):
    """The request body is over ``--max-body-bytes``, declared or counted as it arrives."""


class BodyTimeout(FmstackError):
    """The client did not send its whole body within ``--body-timeout``."""


class WrongHost(InvalidInput):
    """The Host header names a host this server does not answer for (``--allowed-hosts``)."""


class NotJSON(InvalidInput):
    """The request body is declared as something other than JSON."""


class ModelNotReady(FmstackError):
    """The model is not loaded yet, or the server is draining."""


class ClientDisconnected(FmstackError):
    """The client closed the connection before its answer was computed; nothing is sent."""


def clip(value: str, limit: int = 100) -> str:
    """``value`` as an error message may echo it: a client's input (a model name, a path) is cut to
    ``limit`` characters, so that a 100 KB name does not come back in full."""
    return value if len(value) <= limit else f"{value[:limit]}... ({len(value)} characters)"


# An absolute path of two or more folders: /home/me/.fmstack/blobs/ab/cd..., C:\Users\me\...
_PATH = re.compile(r"(?:[A-Za-z]:)?(?:[/\\][^\s'\"/\\:]+){2,}[/\\]?")


def hide_paths(message: str) -> str:
    """``message`` without the server's file paths (each becomes ``.../<its last part>``), for what a
    client may read, such as ``/readyz``; the log keeps them in full."""
    return _PATH.sub(lambda m: ".../" + re.split(r"[/\\]", m.group().rstrip("/\\"))[-1], message)
