"""The path every inference request takes, whatever its wire format: find the model, check limits,
tokenise, queue, and wait for the batch result, the deadline or the client's disconnect."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray
from starlette.requests import Request

from fmstack.errors import InvalidInput, Unsupported
from fmstack.hub import VersionInfo
from fmstack.serve.admission import TIMEOUT_HEADER, request_timeout
from fmstack.serve.errors import ClientDisconnected, DeadlineExceeded, InputTooLarge, ModelNotReady
from fmstack.serve.models import Loaded, ServedModel
from fmstack.serve.runtimes.base import Runtime, RuntimeInfo, Task
from fmstack.serve.state import ServerState
from fmstack.serve.worker import Ticket

# What may be tokenised on the event loop, which answers every other request meanwhile (health checks
# included): a few short texts, well under a millisecond. Anything more goes to a thread, in chunks of
# at most _CHUNK_CHARS characters so that a request's tokeniser state (offsets, tokens, masks: ~200
# bytes per character) stays small whatever its size. A thread hop costs more than a short text.
_INLINE_TEXTS = 32
_INLINE_CHARS = 2048
_CHUNK_CHARS = 131_072

# Characters that show nothing: a text made only of these (and whitespace) is as empty as "" to a model.
_INVISIBLE = re.compile(
    r"[\s\x00-\x1f\x7f-\xa0\u00ad\u034f\u061c\u115f\u1160\u17b4\u17b5\u180b-\u180f\u200b-\u200f"
    r"\u202a-\u202e\u2060-\u206f\u2800\u3164\ufe00-\ufe0f\ufeff\uffa0\U000e0000-\U000e0fff]*"
)


# How a client asks for texts too long to be cut instead of refused, per protocol: a body field
# of the OpenAI routes, and the KServe v2 request parameter (``"parameters": {"truncate": true}``).
OPENAI_TRUNCATE = '"truncate": true'
KSERVE_TRUNCATE = '"parameters": {"truncate": true}'


@dataclass(frozen=True)
class Prediction:
    model: ServedModel
    version: VersionInfo
    info: RuntimeInfo
    outputs: NDArray[np.float32]  # (texts, labels) scores or (texts, dimensions) vectors
    tokens: int
    runtime: Runtime  # what answered (/v1/search reads its version's vector index)


async def predict(
    state: ServerState,
    request: Request,
    name: str,
    texts: list[str],
    task: Task | None,
    *,
    truncate: bool = False,
    truncate_hint: str = OPENAI_TRUNCATE,
) -> Prediction:
    """Answer ``texts`` with model ``name``. ``truncate``: cut texts longer than the limits (characters,
    then tokens) instead of refusing them; ``truncate_hint``: how a client of this route asks for that,
    named in the refusal of a text too long."""
    served = state.models.get(name)
    request.state.model = served.name
    limits = state.settings
    texts = _check_texts(texts, limits.max_inputs, limits.max_input_chars, truncate, truncate_hint)
    timeout_s = request_timeout(request.headers.get(TIMEOUT_HEADER), state.settings.request_timeout_s)
    deadline = time.monotonic() + timeout_s
    gone = _client_gone(request)
    for _attempt in range(3):
        loaded = served.loaded()
        _check_task(served, loaded.runtime.info, task)
        ids = await _encode(loaded, served.name, texts, truncate, truncate_hint)
        if loaded.worker.closing:  # swapped while we tokenised: use the new version
            continue
        try:
            ticket = loaded.worker.submit(ids, deadline, gone)
        except ModelNotReady:
            continue
        outputs = await _wait(ticket, request, deadline, timeout_s, watch=gone is None)
        tokens = sum(len(t) for t in ids)
        return Prediction(served, loaded.version, loaded.runtime.info, outputs, tokens, loaded.runtime)
    raise ModelNotReady(f"model {served.name!r} is being swapped; retry")


async def _encode(loaded: Loaded, name: str, texts: list[str], truncate: bool, hint: str) -> list[list[int]]:
    """Token ids of every text within the model's max_length (cut to it with ``truncate``)."""
    fit = _Fit(name, loaded.runtime.info.max_length, loaded.special_tail() if truncate else None, hint)
    if len(texts) <= _INLINE_TEXTS and sum(map(len, texts)) <= _INLINE_CHARS:
        return fit(loaded.runtime.encode(texts))
    return await asyncio.to_thread(_encode_in_chunks, loaded.runtime, texts, fit)


def _encode_in_chunks(runtime: Runtime, texts: list[str], fit: _Fit) -> list[list[int]]:
    """Tokenise chunk by chunk, keeping only ids; a text the model refuses stops the work there."""
    ids: list[list[int]] = []
    start = 0
    while start < len(texts):
        end, chars = start + 1, len(texts[start])
        while end < len(texts) and chars + len(texts[end]) <= _CHUNK_CHARS:
            chars += len(texts[end])
            end += 1
        ids.extend(fit(runtime.encode(texts[start:end]), offset=start))
        start = end
    return ids


@dataclass(frozen=True)
class _Fit:
    """Checks (or with ``tail`` set, cuts) token ids against the model's max_length. ``tail``: how many
    special tokens the tokenizer appends (BERT's [SEP]: 1), kept at the end of a cut text."""

    model: str
    limit: int
    tail: int | None
    hint: str  # how the client asks for truncation

    def __call__(self, ids: list[list[int]], offset: int = 0) -> list[list[int]]:
        for index, seq in enumerate(ids):
            if len(seq) <= self.limit:
                continue
            if self.tail is None:
                raise InvalidInput(
                    f"input {offset + index} has {len(seq)} tokens; model {self.model!r} accepts at most "
                    f"{self.limit} (max_length): shorten or split the text, or send {self.hint}"
                )
            ids[index] = seq[: self.limit - self.tail] + seq[len(seq) - self.tail :]
        return ids


def _client_gone(request: Request) -> Callable[[], bool] | None:
    """A check, cheap and safe from any thread, of whether the client has closed the connection.

    Under uvicorn (what ``fmstack serve`` runs) ``receive`` is a method of the request's
    ``RequestResponseCycle``, whose ``disconnected`` flag the connection sets when it is lost. The batch
    worker reads it when it takes a batch and drops a gone client's texts then, with no task per
    request awaiting ``http.disconnect`` (a tenth of the event loop's time per request at concurrency
    32). None under other ASGI servers: ``_wait`` then watches with such a task.
    """
    cycle: Any = getattr(request.receive, "__self__", None)
    if not isinstance(getattr(cycle, "disconnected", None), bool):
        return None
    return lambda: bool(cycle.disconnected)


async def _wait(
    ticket: Ticket, request: Request, deadline: float, timeout_s: float, watch: bool
) -> NDArray[np.float32]:
    """The ticket's result, or the error of whatever came first: the client's disconnect, the deadline.

    Each ends the wait by failing ``ticket.future`` from a callback, so a request awaits one future
    (not ``asyncio.wait`` over several, which costs a waiter and callbacks to add and remove each time).
    A disconnect is seen by the worker (``Ticket.given_up``), or with ``watch`` by a task here.
    """
    state: ServerState = request.app.state.server
    watcher: asyncio.Future[bool] | None = None
    if watch:
        watcher = asyncio.ensure_future(_disconnected(request))
        watcher.add_done_callback(lambda w: _disconnected_fails(ticket, w))
    timer = asyncio.get_running_loop().call_later(
        max(0.0, deadline - time.monotonic()), _deadline_fails, ticket, timeout_s
    )
    try:
        return await ticket.future
    except asyncio.CancelledError:
        ticket.abandon("shutdown")
        if not state.draining:
            raise
        # The drain deadline passed (uvicorn cancels what is left): answer instead of a bare 500.
        raise ModelNotReady(
            f"the server shut down before this request was answered (--drain-timeout "
            f"{state.settings.drain_timeout_s} s); retry on another replica"
        ) from None
    finally:
        if watcher is not None:
            watcher.cancel()
        timer.cancel()


def _disconnected_fails(ticket: Ticket, watcher: asyncio.Future[bool]) -> None:
    if watcher.cancelled() or not watcher.result() or ticket.future.done():
        return
    ticket.abandon("disconnected")  # its texts still queued are skipped, not computed
    ticket.future.set_exception(ClientDisconnected("the client closed the connection"))


def _deadline_fails(ticket: Ticket, timeout_s: float) -> None:
    if ticket.future.done():
        return
    ticket.abandon("deadline")
    ticket.future.set_exception(
        DeadlineExceeded(
            f"no answer within the request deadline of {timeout_s} s (X-Request-Timeout or "
            "--request-timeout): the server "
            "is busy, or the deadline is too short for this request"
        )
    )


async def _disconnected(request: Request) -> bool:
    """Resolves once the client disconnects (the body is already read, so the next ASGI message can
    only be ``http.disconnect``)."""
    message = await request.receive()
    return bool(message["type"] == "http.disconnect")


def _check_texts(texts: list[str], max_inputs: int, max_chars: int, truncate: bool, hint: str) -> list[str]:
    """The texts to tokenise: refused when there are none, too many or blank ones; a text over
    ``max_chars`` characters is refused before any work, or cut with ``truncate``."""
    if not texts:
        raise InvalidInput("'input' is empty: send at least one text")
    if len(texts) > max_inputs:
        raise InputTooLarge(f"{len(texts)} texts in one request; the limit is {max_inputs} (--max-inputs)")
    longest = max(map(len, texts))
    if longest > max_chars:
        if not truncate:
            index = next(i for i, t in enumerate(texts) if len(t) > max_chars)
            raise InputTooLarge(
                f"input {index} has {len(texts[index])} characters; the limit is {max_chars} "
                f"(--max-input-chars): shorten or split the text, or send {hint}"
            )
        texts = [t[:max_chars] for t in texts]
    blank = next((i for i, t in enumerate(texts) if _INVISIBLE.fullmatch(t)), None)
    if blank is not None:  # a model's answer to no text means nothing
        raise InvalidInput(f"input {blank} is empty or only whitespace or invisible characters: send text")
    return texts


def _check_task(served: ServedModel, info: RuntimeInfo, task: Task | None) -> None:
    if task is not None and info.task != task:
        other = "/v1/classify" if info.task == "classification" else "/v1/embeddings"
        raise Unsupported(f"model {served.name!r} serves {info.task}, not {task}; use {other}")
