"""One model's batch queue and the thread that runs it.

Requests arrive on the event loop, are tokenised there, and wait here as items (one per text).
Dedicated threads per model (as many as the runtime computes batches at once, ``RuntimeInfo.batches``)
take batches (``batching.next_batch``), run the runtime's forward pass and hand results back to the
loop with one ``call_soon_threadsafe`` per batch, so model compute never blocks the event loop and the
loop never waits on a lock held across compute.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from fmstack.serve.batching import Limits, next_batch, split_dead, wait_time
from fmstack.serve.errors import ClientDisconnected, DeadlineExceeded, ModelNotReady, QueueFull
from fmstack.serve.runtimes.base import Runtime


class Ticket:
    """One request's texts in flight: resolves to a (texts, outputs) array once every text is done."""

    def __init__(
        self, loop: asyncio.AbstractEventLoop, count: int, gone: Callable[[], bool] | None = None
    ) -> None:
        self.future: asyncio.Future[NDArray[np.float32]] = loop.create_future()
        self.rows: list[NDArray[np.float32] | None] = [None] * count
        self.remaining = count  # touched only by worker threads, under their worker's lock
        # Why nobody waits for this request any more ("disconnected", "deadline"); None while someone
        # does. Set on the loop or by the worker, read by the worker to skip the remaining texts.
        self.abandoned: str | None = None
        self._gone = gone  # whether the client closed its connection, callable from any thread

    def abandon(self, reason: str) -> None:
        if self.abandoned is None:
            self.abandoned = reason

    def given_up(self) -> bool:
        """Whether nobody waits for the result any more, noticing a client that has gone since."""
        if self.abandoned is None and self._gone is not None and self._gone():
            self.abandon("disconnected")
        return self.abandoned is not None

    def result_or_none(self) -> NDArray[np.float32] | None:
        if self.remaining:
            return None
        if len(self.rows) == 1 and self.rows[0] is not None:  # most requests carry one text
            return self.rows[0][np.newaxis]
        return np.stack([r for r in self.rows if r is not None])


@dataclass(eq=False, slots=True)
class Item:
    """One text waiting for a batch (satisfies ``batching.Pending``)."""

    ids: list[int]
    length: int  # len(ids): read many times per batch decision, so stored rather than computed
    arrival: float
    deadline: float
    ticket: Ticket
    index: int  # position of the text in its request

    @property
    def dropped(self) -> bool:
        return self.ticket.given_up()


@dataclass
class Observer:
    """Where a worker reports what it did (the metrics module fills these in)."""

    batch: Callable[[int, int, float], None] = lambda size, tokens, seconds: None
    depth: Callable[[int], None] = lambda depth: None
    drop: Callable[[str, int], None] = lambda reason, count: None


@dataclass
class _Rate:
    """Exponential average of seconds per text, for the Retry-After estimate."""

    seconds_per_text: float = 0.01
    alpha: float = 0.2

    def update(self, texts: int, seconds: float) -> None:
        self.seconds_per_text += self.alpha * (seconds / max(texts, 1) - self.seconds_per_text)


@dataclass(eq=False)
class ModelWorker:
    name: str
    runtime: Runtime
    limits: Limits
    max_queue: int
    observer: Observer = field(default_factory=Observer)
    _pending: list[Item] = field(default_factory=list)
    _cond: threading.Condition = field(default_factory=threading.Condition)
    _closing: bool = False
    _threads: list[threading.Thread] = field(default_factory=list)
    _rate: _Rate = field(default_factory=_Rate)
    # Guards what several compute threads update after a batch: tickets' rows and the rate estimate.
    _results: threading.Lock = field(default_factory=threading.Lock)

    def start(self) -> None:
        for i in range(max(1, self.runtime.info.batches)):
            thread = threading.Thread(target=self._run, name=f"fmstack-batch-{self.name}-{i}", daemon=True)
            thread.start()
            self._threads.append(thread)

    @property
    def closing(self) -> bool:
        return self._closing

    @property
    def depth(self) -> int:
        return len(self._pending)

    def submit(
        self, ids: Sequence[list[int]], deadline: float, gone: Callable[[], bool] | None = None
    ) -> Ticket:
        """Queue one request's texts; called on the event loop. ``gone`` tells whether the client has
        left (its texts are then skipped). Raises ``QueueFull`` when over capacity."""
        loop = asyncio.get_running_loop()
        ticket = Ticket(loop, len(ids), gone)
        now = time.monotonic()
        with self._cond:
            if self._closing:
                raise ModelNotReady(f"model {self.name!r} is being unloaded; retry")
            if len(self._pending) + len(ids) > self.max_queue:
                wait = math.ceil(len(self._pending) * self._rate.seconds_per_text) or 1
                raise QueueFull(
                    f"model {self.name!r} has {len(self._pending)} texts queued (limit --max-queue "
                    f"{self.max_queue}); retry in {wait} s",
                    retry_after_s=wait,
                )
            self._pending.extend(Item(list(t), len(t), now, deadline, ticket, i) for i, t in enumerate(ids))
            self.observer.depth(len(self._pending))
            self._cond.notify()
        return ticket

    def close(self) -> None:
        """Finish what is queued (without waiting for company), then stop the thread."""
        with self._cond:
            self._closing = True
            self._cond.notify_all()
        for thread in self._threads:
            thread.join()

    # -- the worker thread -------------------------------------------------------------------------

    def _run(self) -> None:
        while True:
            batch = self._take()
            if batch is None:
                return
            self._compute(batch)

    def _take(self) -> list[Item] | None:
        """Block until a batch is due; None once closing with nothing left."""
        with self._cond:
            while True:
                now = time.monotonic()
                self._pending, expired, dropped = split_dead(self._pending, now)
                self._fail(expired)
                self._drop(dropped)
                if not self._pending:
                    self.observer.depth(0)
                    if self._closing:
                        return None
                    self._cond.wait()
                    continue
                delay = 0.0 if self._closing else wait_time(self._pending, self.limits, now)
                if delay <= 0:
                    break
                self._cond.wait(delay)
            batch = next_batch(self._pending, self.limits)
            taken = set(map(id, batch))
            self._pending = [p for p in self._pending if id(p) not in taken]
            self.observer.depth(len(self._pending))
            if self._pending:
                self._cond.notify()  # an idle compute thread may take what is left
            return batch

    def _fail(self, items: list[Item]) -> None:
        if not items:
            return
        self.observer.drop("deadline", len(items))
        error = DeadlineExceeded(f"model {self.name!r}: no answer before the request's deadline")
        tickets = {id(i.ticket): i.ticket for i in items}.values()
        for ticket in tickets:
            ticket.abandon("deadline")  # its other texts, if any, are skipped too
        _deliver([(ticket, error) for ticket in tickets])

    def _drop(self, items: list[Item]) -> None:
        """Count texts nobody waits for, and answer the requests of clients found gone here."""
        for reason in {item.ticket.abandoned for item in items}:
            self.observer.drop(str(reason), sum(i.ticket.abandoned == reason for i in items))
        gone = {id(i.ticket): i.ticket for i in items if i.ticket.abandoned == "disconnected"}.values()
        _deliver([(ticket, ClientDisconnected("the client closed the connection")) for ticket in gone])

    def _compute(self, batch: list[Item]) -> None:
        start = time.perf_counter()
        try:
            out = self.runtime.forward([item.ids for item in batch])  # (batch, outputs)
        except Exception as exc:  # a failed forward fails its requests, not the worker
            tickets = {id(i.ticket): i.ticket for i in batch}.values()
            for ticket in tickets:
                ticket.abandon("error")
            _deliver([(ticket, exc) for ticket in tickets])
            return
        seconds = time.perf_counter() - start
        self.observer.batch(len(batch), sum(item.length for item in batch), seconds)
        done: dict[int, Ticket] = {}
        with self._results:  # another thread may hold the same request's other texts
            self._rate.update(len(batch), seconds)
            for item, row in zip(batch, out, strict=True):
                ticket = item.ticket
                ticket.rows[item.index] = row
                ticket.remaining -= 1
                if ticket.remaining == 0:
                    done[id(ticket)] = ticket
        _deliver([(t, r) for t in done.values() if (r := t.result_or_none()) is not None])


Outcome = NDArray[np.float32] | BaseException


def _deliver(outcomes: list[tuple[Ticket, Outcome]]) -> None:
    """Resolve tickets' futures from the worker thread, with one wake-up of the loop per batch; a
    request that already gave up (its future is done) is skipped."""
    if not outcomes:
        return

    def resolve() -> None:
        for ticket, outcome in outcomes:
            if ticket.future.done():
                continue
            if isinstance(outcome, BaseException):
                ticket.future.set_exception(outcome)
            else:
                ticket.future.set_result(outcome)

    with contextlib.suppress(RuntimeError):  # the loop is closed: nobody waits any more
        outcomes[0][0].future.get_loop().call_soon_threadsafe(resolve)
