"""``local``: a process pool on this machine (the default). One worker runs tasks in-process."""

from __future__ import annotations

import multiprocessing
import os
import signal
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")


def default_workers() -> int:
    return max(1, min(os.cpu_count() or 1, 8))


class LocalExecutor:
    def __init__(
        self, workers: int | None = None, address: str | None = None, settings: object = None
    ) -> None:
        self.workers = workers or default_workers()
        self._pool: ProcessPoolExecutor | None = None

    def __enter__(self) -> LocalExecutor:
        if self.workers > 1:
            # spawn, not fork: the parent may hold threads (tokenizers, Arrow) that fork would copy mid-lock.
            self._pool = ProcessPoolExecutor(
                self.workers,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=_leave_ctrl_c_to_parent,
            )
        return self

    def __exit__(self, *exc: object) -> None:
        pool, self._pool = self._pool, None
        if pool is None:
            return
        if exc[0] is None:  # (type, value, traceback): a clean exit
            pool.shutdown(wait=True)
            return
        # Interrupted or failed: the rest of the work is abandoned (``--resume`` redoes unfinished
        # shards), so stop the workers now. Waiting for them, as ``shutdown(wait=True)`` does, could
        # hang for good after a Ctrl-C (workers idle on the call queue, the parent on them).
        # ``terminate_workers`` arrives in Python 3.14; until then the pool's process table.
        for process in list((pool._processes or {}).values()):
            process.terminate()
        pool.shutdown(wait=False)

    def map(self, fn: Callable[[T], R], items: Sequence[T]) -> Iterator[R]:
        if self._pool is None or len(items) <= 1:
            return (fn(item) for item in items)
        # Not ``pool.map``: its iterator cancels the pending futures when abandoned, and the pool,
        # broken by ``__exit__`` stopping its workers, then fails those cancelled futures, which on
        # Python 3.11 prints an InvalidStateError traceback from its manager thread.
        futures = [self._pool.submit(fn, item) for item in items]
        return (future.result() for future in futures)


def _leave_ctrl_c_to_parent() -> None:
    """Workers ignore SIGINT: a Ctrl-C reaches the whole process group, and the parent alone decides
    (it stops the workers), rather than each worker printing its own KeyboardInterrupt traceback."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
