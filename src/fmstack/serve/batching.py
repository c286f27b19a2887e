"""Pure batching decisions: when a model's queue should run, and which texts go in the next batch.

Nothing here touches threads, clocks or models: the worker (``serve.worker``) passes the pending items
and the time in, so every rule is a plain function with a plain test.

A batch costs what its padded tensor costs, ``len(batch) * longest``: one 200-token text among
thirty 10-token ones makes the whole batch 200 tokens wide. ``next_batch`` therefore groups texts
of similar length (length-sorted, within a token budget), while always taking the oldest waiting text
so that nothing starves.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, TypeVar


class Pending(Protocol):
    """What batching needs to know about one waiting text."""

    @property
    def length(self) -> int: ...  # tokens, special tokens included

    @property
    def arrival(self) -> float: ...  # monotonic seconds

    @property
    def deadline(self) -> float: ...  # monotonic seconds

    @property
    def dropped(self) -> bool: ...  # its client went away


P = TypeVar("P", bound=Pending)


@dataclass(frozen=True)
class Limits:
    max_tokens: int  # padded tokens per batch: len(batch) * longest text
    max_size: int  # texts per batch
    max_wait_s: float  # how long the oldest text may wait for company
    # Least share of real tokens in the padded batch (sum of lengths / (len(batch) * longest)): a text
    # that would make the batch mostly padding waits for a batch of its own length instead.
    min_fill: float = 0.0


def padded_tokens(lengths: Sequence[int]) -> int:
    """What a batch of these lengths costs once padded to the longest one."""
    return len(lengths) * max(lengths, default=0)


def wait_time(pending: Sequence[P], limits: Limits, now: float) -> float:
    """Seconds until the queue should run a batch: 0 when a full batch waits or the oldest text has
    waited ``max_wait_s``; ``inf`` when nothing waits."""
    if not pending:
        return float("inf")
    if len(pending) >= limits.max_size or sum(p.length for p in pending) >= limits.max_tokens:
        return 0.0
    oldest = min(p.arrival for p in pending)
    return max(0.0, oldest + limits.max_wait_s - now)


def split_dead(pending: Sequence[P], now: float) -> tuple[list[P], list[P], list[P]]:
    """(alive, past their deadline, dropped by their client), each in the original order."""
    alive: list[P] = []
    expired: list[P] = []
    dropped: list[P] = []
    for p in pending:
        if p.dropped:
            dropped.append(p)
        elif p.deadline <= now:
            expired.append(p)
        else:
            alive.append(p)
    return alive, expired, dropped


def next_batch(pending: Sequence[P], limits: Limits) -> list[P]:
    """The texts of the next batch, shortest first.

    ``pending`` is in arrival order. The oldest text always goes in (no starvation, even when it alone
    is over the budget); the others join closest-in-length first while the padded batch stays within
    ``max_tokens`` and ``max_size`` and at least ``min_fill`` of it is real tokens. On a CPU the cost of
    a batch grows with its padded size, so padding is compute spent on nothing.
    """
    if not pending:
        return []
    lengths = [p.length for p in pending]
    anchor = lengths[0]  # the oldest text's
    # Closest length to the anchor first; among equals, the older first (index breaks ties).
    order = sorted(range(1, len(pending)), key=lambda i: (abs(lengths[i] - anchor), i))
    batch = [pending[0]]
    longest, real = anchor, anchor
    for i in order:
        if len(batch) >= limits.max_size:
            break
        length = lengths[i]
        wider, size = max(longest, length), len(batch) + 1
        if wider * size <= limits.max_tokens and real + length >= limits.min_fill * wider * size:
            batch.append(pending[i])
            longest, real = wider, real + length
    batch.sort(key=lambda p: p.length)
    return batch
