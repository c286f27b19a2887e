"""Every error fmstack raises on purpose, in one tree.

    FmstackError            base; the CLI maps it to exit code 1, the HTTP server to a 4xx
    ├── InvalidInput        the caller gave something malformed (a bad ref, a bad path, a bad spec)
    ├── NotFound            a repo, version, alias, run or file that does not exist
    ├── Conflict            the request is valid but clashes with current state (alias in use, ...)
    ├── Unsupported         a valid request this installation cannot do (missing extra, fp16 on CPU)
    ├── Unavailable         a service fmstack needs cannot be reached or used (database server, hub folder)
    └── IntegrityError      stored bytes do not match their recorded hash

Messages say what happened, show the offending value and say what to do next. Anything that is not
an ``FmstackError`` is a bug: the CLI reports it as an internal error (exit code 2).
"""

from __future__ import annotations


class FmstackError(Exception):
    """Base class of every error that is the caller's to fix."""


class InvalidInput(FmstackError):
    """The input is malformed; the message names the problem and how to fix it."""


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
