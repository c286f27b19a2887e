"""One model's batch queue and the thread that runs it.

Requests arrive on the event loop, are tokenised there, and wait here as items (one per text).
Dedicated threads per model (as many as the runtime computes batches at once, ``RuntimeInfo.batches``)
take batches (``batching.next_batch``), run the runtime's forward pass and hand results back to the
loop with one ``call_soon_threadsafe`` per batch, so model compute never blocks the event loop and the
loop never waits on a lock held across compute.

Admission happens here too, under the queue's lock: a request whose texts are not expected to be
computed before its deadline, measured from the batches computed so far (``serve.admission``), is
refused at once with ``QueueFull`` (429). A failure inside a batch fails that batch's requests and the
thread goes on; a thread that dies all the same marks the worker dead (``failure``), so readiness turns
503 and requests are refused instead of waiting for a compute that never comes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from fmstack.serve.admission import Throughput, refusal, retry_after
from fmstack.serve.batching import Limits, next_batch, split_dead, wait_time
from fmstack.serve.errors import ClientDisconnected, DeadlineExceeded, ModelNotReady, QueueFull
from fmstack.serve.runtimes.base import Runtime

log = logging.getLogger("fmstack.serve")


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


class BatchOutputMismatch(RuntimeError):
    """A runtime's forward pass returned another number of rows than the batch had texts: a bug in the
    runtime. The batch's requests fail with this error (HTTP 500); the worker goes on."""


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
    # What admission weighs, under ``_cond``: tokens waiting in ``_pending`` and tokens being computed.
    _queued_tokens: int = 0
    _computing_tokens: int = 0
    _throughput: Throughput = field(default_factory=Throughput)
    _last_done: float = 0.0  # perf_counter() when a batch last completed, for ``_throughput``
    # Why a compute thread stopped for good (None while all run): the model then serves nothing more,
    # and readiness says so (``ModelSet.ready``) rather than letting every request time out.
    failure: str | None = None
    # Guards what several compute threads update after a batch: tickets' rows and the throughput.
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
    def alive(self) -> bool:
        return self.failure is None

    @property
    def depth(self) -> int:
        return len(self._pending)

    @property
    def throughput(self) -> Throughput:
        return self._throughput

    def submit(
        self, ids: Sequence[list[int]], deadline: float, gone: Callable[[], bool] | None = None
    ) -> Ticket:
        """Queue one request's texts; called on the event loop. ``gone`` tells whether the client has
        left (its texts are then skipped). Raises ``QueueFull`` when over capacity or when the queue
        ahead is not expected to be computed before ``deadline``, ``ModelNotReady`` when unloading or
        dead."""
        loop = asyncio.get_running_loop()
        ticket = Ticket(loop, len(ids), gone)
        now = time.monotonic()
        tokens = sum(map(len, ids))
        with self._cond:
            self._admit(len(ids), tokens, deadline - now)
            self._pending.extend(Item(list(t), len(t), now, deadline, ticket, i) for i, t in enumerate(ids))
            self._queued_tokens += tokens
            self.observer.depth(len(self._pending))
            self._cond.notify()
        return ticket

    def _admit(self, texts: int, tokens: int, budget_s: float) -> None:
        """Raise unless a request of ``texts`` and ``tokens`` may join the queue now (under ``_cond``)."""
        if self.failure is not None:
            raise ModelNotReady(f"model {self.name!r} cannot compute: {self.failure}; restart the server")
        if self._closing:
            raise ModelNotReady(f"model {self.name!r} is being unloaded; retry")
        ahead = self._queued_tokens + self._computing_tokens
        if len(self._pending) + texts > self.max_queue:
            wait = retry_after(self._throughput, ahead)
            raise QueueFull(
                f"model {self.name!r} has {len(self._pending)} texts queued (limit --max-queue "
                f"{self.max_queue}); retry in {wait} s",
                retry_after_s=wait,
            )
        refused = refusal(self._throughput, ahead, tokens, budget_s)
        if refused is not None:
            raise QueueFull(
                f"model {self.name!r} is busy: with the texts queued ahead, this request's would be "
                f"computed in about {refused.wait_s:.2f} s, more than its deadline allows ({budget_s:.2f} s "
                f"left; X-Request-Timeout or --request-timeout); retry in {refused.retry_after_s} s",
                retry_after_s=refused.retry_after_s,
            )

    def close(self) -> None:
        """Finish what is queued (without waiting for company), then stop the thread."""
        with self._cond:
            self._closing = True
            self._cond.notify_all()
        for thread in self._threads:
            thread.join()

    # -- the worker thread -------------------------------------------------------------------------

    def _run(self) -> None:
        try:
            while (batch := self._take()) is not None:
                self._compute(batch)  # never raises: a failed batch fails its requests
        except BaseException as exc:  # a bug here or in the runtime took the thread down: say so
            log.critical(
                "model %r: a batch thread stopped; the model serves nothing more", self.name, exc_info=exc
            )
            self._died(exc)

    def _died(self, exc: BaseException) -> None:
        """Mark the worker dead (the first reason stays) and fail every request still queued: nobody
        will compute them."""
        with self._cond:
            if self.failure is None:
                self.failure = f"its batch thread stopped ({type(exc).__name__}: {exc})"
            pending, self._pending = self._pending, []
            self._queued_tokens = 0
            self.observer.depth(0)
        error = ModelNotReady(f"model {self.name!r} cannot compute: {self.failure}; restart the server")
        _deliver([(ticket, error) for ticket in _tickets(pending)])

    def _take(self) -> list[Item] | None:
        """Block until a batch is due; None once closing with nothing left."""
        with self._cond:
            while True:
                now = time.monotonic()
                self._pending, expired, dropped = split_dead(self._pending, now)
                self._fail(expired)
                self._drop(dropped)
                if not self._pending:
                    self._queued_tokens = 0
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
            # Recounted here, where the queue is walked anyway: expired and dropped texts left it too.
            self._queued_tokens = sum(p.length for p in self._pending)
            self._computing_tokens += sum(item.length for item in batch)
            self.observer.depth(len(self._pending))
            if self._pending:
                self._cond.notify()  # an idle compute thread may take what is left
            return batch

    def _fail(self, items: list[Item]) -> None:
        if not items:
            return
        self.observer.drop("deadline", len(items))
        error = DeadlineExceeded(f"model {self.name!r}: no answer before the request's deadline")
        tickets = _tickets(items)
        for ticket in tickets:
            ticket.abandon("deadline")  # its other texts, if any, are skipped too
        _deliver([(ticket, error) for ticket in tickets])

    def _drop(self, items: list[Item]) -> None:
        """Count texts nobody waits for, and answer the requests of clients found gone here."""
        for reason in {item.ticket.abandoned for item in items}:
            self.observer.drop(str(reason), sum(i.ticket.abandoned == reason for i in items))
        gone = [t for t in _tickets(items) if t.abandoned == "disconnected"]
        _deliver([(ticket, ClientDisconnected("the client closed the connection")) for ticket in gone])

    def _compute(self, batch: list[Item]) -> None:
        """Run one batch and answer its requests; any failure fails this batch's requests only."""
        tokens = sum(item.length for item in batch)
        try:
            done = self._forward(batch, tokens)
        except Exception as exc:  # a failed forward fails its requests, not the worker
            _fail_all(batch, exc)
        except BaseException as exc:  # the thread is going down (``_run``): answer this batch first,
            # once the worker is marked dead, so that a client told 503 finds /readyz saying why
            self._died(exc)
            _fail_all(batch, ModelNotReady(f"model {self.name!r}: its batch thread stopped ({exc!r})"))
            raise
        else:
            _deliver([(t, r) for t in done if (r := t.result_or_none()) is not None])
        finally:
            with self._cond:
                self._computing_tokens -= tokens

    def _forward(self, batch: list[Item], tokens: int) -> list[Ticket]:
        """The forward pass of ``batch``, its rows stored in their tickets; returns the tickets it
        completed."""
        start = time.perf_counter()
        out = self.runtime.forward([item.ids for item in batch])  # (batch, outputs)
        end = time.perf_counter()
        seconds = end - start
        if len(out) != len(batch):
            raise BatchOutputMismatch(
                f"model {self.name!r}: the runtime returned {len(out)} rows for a batch of {len(batch)} "
                "texts; this is a bug in the runtime, please report it"
            )
        self.observer.batch(len(batch), tokens, seconds)
        done: list[Ticket] = []
        with self._results:  # another thread may hold the same request's other texts
            # Busy time since the last completion: with threads computing side by side, each batch
            # accounts for the stretch since the previous one finished, so the sum is wall time.
            self._throughput.update(tokens, end - max(start, self._last_done))
            self._last_done = end
            for item, row in zip(batch, out, strict=True):
                ticket = item.ticket
                ticket.rows[item.index] = row
                ticket.remaining -= 1
                if ticket.remaining == 0:
                    done.append(ticket)
        return done


def _fail_all(batch: Sequence[Item], error: BaseException) -> None:
    tickets = _tickets(batch)
    for ticket in tickets:
        ticket.abandon("error")  # its texts in other batches are skipped
    _deliver([(ticket, error) for ticket in tickets])


def _tickets(items: Sequence[Item]) -> list[Ticket]:
    """The distinct requests of ``items``, in order."""
    return list({id(i.ticket): i.ticket for i in items}.values())


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
