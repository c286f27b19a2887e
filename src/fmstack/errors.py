"""Every error fmstack raises on purpose, in one tree.

    FmstackError            base; the CLI maps it to exit code 1, the HTTP server to a 4xx
    ├── InvalidInput        the caller gave something malformed (a bad ref, a bad path, a bad spec)
    │   └── TrainingDiverged    the loss became NaN or infinite (usually a learning rate too high)
    ├── NotFound            a repo, version, alias, run or file that does not exist
    ├── Conflict            the request is valid but clashes with current state (alias in use, ...)
    ├── Unsupported         a valid request this installation cannot do (missing extra, fp16 on CPU)
    ├── Unavailable         a service fmstack needs cannot be reached or used (database server, hub folder)
    ├── Unauthorized        the request has no credentials, or ones not valid here (HTTP 401)
    ├── Forbidden           valid credentials whose scopes or role do not allow this (HTTP 403)
    └── IntegrityError      stored bytes do not match their recorded hash

Messages say what happened, show the offending value and say what to do next. Anything that is not
an ``FmstackError`` is a bug: the CLI reports it as an internal error (exit code 2). A message quotes
user input through ``clip``, so a 50 MB line or file name never floods the terminal.
"""

from __future__ import annotations


class FmstackError(Exception):
    """Base class of every error that is the caller's to fix."""


class InvalidInput(FmstackError):
    """The input is malformed; the message names the problem and how to fix it."""


class TrainingDiverged(InvalidInput):
    """The training loss became NaN or infinite; the message names the step and a smaller learning rate."""


class NotFound(FmstackError):
    """The named thing does not exist."""


class Conflict(FmstackError):
    """The request clashes with the current state of the hub."""


class Unsupported(FmstackError):
    """The request is valid but cannot be done here (missing extra, device, format)."""


class Unavailable(FmstackError):
    """A service or place fmstack needs cannot be reached or used; the message says which and why."""


class IntegrityError(FmstackError):
    """Stored bytes do not match the hash they were stored under."""


class Unauthorized(FmstackError):
    """The request carries no credentials (API key, token), or ones that are not valid here."""


class Forbidden(FmstackError):
    """The credentials are valid, but their scopes or the user's role do not allow this request."""


CLIP_CHARS = 200  # the most characters of one piece of user input a message quotes


def clip(value: object, limit: int = CLIP_CHARS) -> str:
    """``str(value)``, cut to ``limit`` characters with the count of what was left out."""
    text = str(value)
    if len(text) <= limit:
        return text
    return f"{text[:limit]}... ({len(text) - limit:,} more characters)"
