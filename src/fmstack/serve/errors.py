"""Errors of the inference server that have no place in the library tree: load shedding and time limits.

    QueueFull          the model's queue holds ``max_queue`` texts already      -> HTTP 429 + Retry-After
    DeadlineExceeded   the request waited past its deadline before an answer     -> HTTP 504
    InputTooLarge      too many texts, or a body over the size limit             -> HTTP 413
    NotJSON            a body whose Content-Type is not JSON                     -> HTTP 415
    ModelNotReady      the model is known but not loaded (starting or draining)  -> HTTP 503

A text longer than the model accepts is ``fmstack.errors.InvalidInput`` (HTTP 422), like any bad input.
"""

from __future__ import annotations

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


class NotJSON(InvalidInput):
    """The request body is declared as something other than JSON."""


class ModelNotReady(FmstackError):
    """The model is not loaded yet, or the server is draining."""


class ClientDisconnected(FmstackError):
    """The client closed the connection before its answer was computed; nothing is sent."""
