"""Deadline-aware admission: how long a model's queue takes to drain, and whether a request still fits.

The batch worker measures every batch it computes (tokens, seconds) into a ``Throughput``; when a
request arrives it asks ``refusal`` whether the work ahead of it plus its own would be computed before
its deadline. A request that cannot make it is refused at once (HTTP 429, ``Retry-After`` the time the
queue takes to drain) instead of waiting, timing out and having taken compute from requests that could
have been answered.

Pure: no clock, no threads, no HTTP. The worker passes the time, the queue's size and takes its lock.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from fmstack.errors import InvalidInput

# Share of a request's remaining time the work ahead of it (its own included) may take. The estimate is an
# average, batch times vary around it (more so on shared cores), the text waits for a batch of its
# length, and the answer must still travel back through the event loop. On the 2-core benchmark
# machine under 2x overload with a 1 s deadline, 0.8 let 6 % of the admitted requests time out (504)
# and 0.5 1 %, with as many answered in time: under overload the queue settles at this share of the
# deadline's worth of work, and half a deadline of work still keeps every compute thread busy.
# The measurements: bench/README.md, serving, goodput.
HEADROOM = 0.5

# The header a client sets to shorten its own deadline (seconds, decimal); the server's
# ``--request-timeout`` stays the longest.
TIMEOUT_HEADER = "x-request-timeout"


@dataclass
class Throughput:
    """Tokens the compute threads complete per second together, from the batches they completed lately.

    The worker reports each completed batch with its real (not padding) tokens and the busy wall time
    since the previous completion (or since the batch started, if nothing was computing before it).
    Two threads finishing batches of ``n`` tokens every ``d`` seconds each report ``2n`` tokens per ``d``
    seconds, whatever their interleaving, so the rate is the measured one: threads that slow each other
    down on shared cores, the fixed cost of each forward pass and the padding of today's batches are all
    in it. Both sums decay by ``decay`` per batch: the rate follows a change of load within ~10 batches.
    """

    decay: float = 0.9
    tokens: float = 0.0
    seconds: float = 0.0

    def update(self, tokens: int, seconds: float) -> None:
        self.tokens = self.tokens * self.decay + tokens
        self.seconds = self.seconds * self.decay + max(seconds, 0.0)

    def drain_s(self, tokens: int) -> float | None:
        """Seconds the compute threads take for ``tokens`` (None before the first measured batch)."""
        if self.tokens <= 0 or self.seconds <= 0:
            return None
        return tokens * self.seconds / self.tokens

    def tokens_per_s(self) -> float | None:
        if self.tokens <= 0 or self.seconds <= 0:
            return None
        return self.tokens / self.seconds


@dataclass(frozen=True)
class Refusal:
    """Why a request is not admitted: the estimated wait and when to retry."""

    wait_s: float  # estimated seconds until its texts would be computed
    budget_s: float  # seconds left before its deadline
    retry_after_s: int  # seconds until the work queued now is computed (at least 1)


def refusal(throughput: Throughput, ahead_tokens: int, own_tokens: int, budget_s: float) -> Refusal | None:
    """None when a request of ``own_tokens``, behind ``ahead_tokens`` queued or computing, is expected to
    be computed within ``HEADROOM`` (half) of its remaining ``budget_s``; else the refusal to send.

    A worker with nothing ahead admits any request: the estimate may be stale (one slow first batch
    would otherwise refuse every later request, and no batch would ever run to correct it), and a request
    alone is computed as soon as it arrives.
    """
    if ahead_tokens <= 0:
        return None
    wait = throughput.drain_s(ahead_tokens + own_tokens)
    if wait is None or wait <= HEADROOM * budget_s:
        return None
    return Refusal(wait, budget_s, retry_after(throughput, ahead_tokens))


def retry_after(throughput: Throughput, queued_tokens: int) -> int:
    """Whole seconds (at least 1, as ``Retry-After`` counts) until ``queued_tokens`` are computed."""
    drain = throughput.drain_s(queued_tokens)
    return max(1, math.ceil(drain)) if drain is not None else 1


def request_timeout(header: str | None, limit_s: float) -> float:
    """A request's timeout: the client's ``X-Request-Timeout`` (seconds) when it sets one, never more
    than the server's ``--request-timeout``."""
    if header is None:
        return limit_s
    try:
        asked = float(header)
    except ValueError:
        asked = math.nan
    if not math.isfinite(asked) or asked <= 0:
        raise InvalidInput(
            f"X-Request-Timeout {header!r} is not a number of seconds above 0: send e.g. "
            "'X-Request-Timeout: 1.5', or leave it out for the server's --request-timeout"
        )
    return min(asked, limit_s)
