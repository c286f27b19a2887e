"""A shared/exclusive lock between pushes and garbage collection.

A push writes blobs before the metadata that references them; a ``gc`` running in between would see
those blobs as orphans and delete them. Pushes hold the lock shared, ``gc`` exclusive. It is an
``flock`` on a file in ``FMSTACK_HOME``, released by the kernel if a holder is killed, so it covers
processes on one machine. Remote stores shared by several machines need gc run from one place.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path


class GcLock:
    def __init__(self, path: Path) -> None:
        self.path = path

    @contextmanager
    def _held(self, mode: int) -> Iterator[None]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, mode)
            yield
        finally:
            os.close(fd)  # closing releases the flock

    def shared(self) -> AbstractContextManager[None]:
        return self._held(fcntl.LOCK_SH)

    def exclusive(self) -> AbstractContextManager[None]:
        return self._held(fcntl.LOCK_EX)
