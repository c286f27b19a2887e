"""The executor contract: run a picklable function over tasks, results in task order.

Tasks are self-contained (paths + spec), write their own outputs atomically and return small
stats, so any executor gives the same bytes; executors differ only in where the work runs."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Protocol, TypeVar

T = TypeVar("T")
R = TypeVar("R")


class Executor(Protocol):
    def __enter__(self) -> Executor: ...

    def __exit__(self, *exc: object) -> None: ...

    def map(self, fn: Callable[[T], R], items: Sequence[T]) -> Iterator[R]: ...
