"""The errors fmstack-edge raises on purpose.

    EdgeError           base: the caller's or the bundle's problem; the message says what to do
    ├── BadBundle       a bundle folder or its files are missing or malformed
    ├── BadInput        a request the model cannot answer (blank text, too long, wrong task)
    └── UpdateRejected  an update that failed verification or its health check (the old slot serves on)

Anything else is a bug. The CLI maps ``EdgeError`` to exit code 1 and anything else to 2; the HTTP
server maps ``BadInput`` to 4xx.
"""

from __future__ import annotations


class EdgeError(Exception):
    """Base class of every error that is the caller's (or the bundle's) to fix."""


class BadBundle(EdgeError):
    """A bundle folder is incomplete or malformed."""


class BadInput(EdgeError):
    """A request the model cannot answer; ``status`` is the HTTP status to answer it with."""

    def __init__(self, message: str, status: int = 422) -> None:
        super().__init__(message)
        self.status = status


class UpdateRejected(EdgeError):
    """An update that was not installed: verification or the health check failed."""
