"""Failed-authentication limiter: an address that presents too many bad tokens in a minute is answered
429 until the minute has passed, so tokens cannot be guessed at network speed (each worker process
counts on its own). Pure bookkeeping over a clock, easy to test with a fake one."""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable

from fmstack.errors import FmstackError

WINDOW_S = 60.0
_MAX_ADDRESSES = 100_000  # bounded memory under a spray of source addresses


class TooManyFailures(FmstackError):
    """Too many failed token checks from one address; retry after ``retry_after_s`` seconds."""

    def __init__(self, message: str, retry_after_s: int) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class FailureLimiter:
    def __init__(self, limit: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.limit = limit
        self._clock = clock
        self._failures: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def check(self, address: str) -> None:
        """Raise ``TooManyFailures`` while ``address`` is over the limit."""
        with self._lock:
            times = self._recent(address)
            if len(times) >= self.limit:
                wait = int(WINDOW_S - (self._clock() - times[0])) + 1
                raise TooManyFailures(
                    f"too many failed token checks from this address: wait {wait} s, then use a valid token",
                    wait,
                )

    def failed(self, address: str) -> None:
        with self._lock:
            if len(self._failures) >= _MAX_ADDRESSES and address not in self._failures:
                self._failures.clear()
            self._recent(address).append(self._clock())

    def _recent(self, address: str) -> deque[float]:
        times = self._failures.setdefault(address, deque())
        cutoff = self._clock() - WINDOW_S
        while times and times[0] <= cutoff:
            times.popleft()
        return times
