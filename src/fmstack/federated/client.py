"""A federation client: ask the coordinator what to do, train each round locally on data that never
leaves this machine, upload only the trained adapter weights (safetensors) with the example count and
local metrics.

HTTP with httpx against the hub server's ``/api/v1/federations`` routes (this package sits below
``fmstack.server``, so it speaks the routes' JSON itself). Connection failures and 5xx answers are
retried until ``give_up_s``: a coordinator restarted mid-round is waited for, not fatal. A client
killed mid-round just runs ``fed join`` again: the coordinator still expects its update for the open
round (or has moved on, and the client trains the next one).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from fmstack.errors import Conflict, FmstackError, InvalidInput, NotFound, Unauthorized, Unavailable, clip
from fmstack.federated.local import LocalModel
from fmstack.federated.spec import FederationSpec
from fmstack.hub import HubApi
from fmstack.hub.scratch import scratch_dir

Say = Callable[[str], None]


@dataclass
class JoinSummary:
    rounds: list[dict[str, Any]] = field(default_factory=list)  # one entry per uploaded update
    final_status: str = ""
    global_ref: str | None = None


class FederationClient:
    """The client routes of one federation, with one federation token."""

    def __init__(
        self, server: str, federation: str, token: str, *, give_up_s: float = 600.0, timeout_s: float = 600.0
    ) -> None:
        self.base = f"{server.rstrip('/')}/api/v1/federations/{federation}"
        self.federation = federation
        self.give_up_s = give_up_s
        self.http = httpx.Client(headers={"Authorization": f"Bearer {token}"}, timeout=timeout_s)

    def close(self) -> None:
        self.http.close()

    def task(self) -> dict[str, Any]:
        return self._json("GET", "/task")

    def status(self) -> dict[str, Any]:
        return self._json("GET", "")

    def download_global(self, number: int, dest: Path) -> None:
        response = self._send("GET", f"/rounds/{number}/global")
        dest.write_bytes(response.content)

    def submit(self, number: int, weights: bytes, examples: int, metrics: dict[str, float]) -> dict[str, Any]:
        params = {"examples": str(examples), "metrics": json.dumps(metrics)}
        return self._json("POST", f"/rounds/{number}/updates", params=params, content=weights)

    def _json(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        body: dict[str, Any] = self._send(method, path, **kwargs).json()
        return body

    def _send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        deadline = time.monotonic() + self.give_up_s
        wait = 0.5
        while True:
            try:
                response = self.http.request(method, self.base + path, **kwargs)
                if response.status_code < 500:
                    break
                problem = f"the server answered {response.status_code}"
            except httpx.TransportError as exc:
                problem = f"cannot reach the coordinator ({type(exc).__name__}: {clip(exc)})"
            if time.monotonic() + wait > deadline:
                raise Unavailable(
                    f"{problem}; gave up after {self.give_up_s:.0f} s: run `fmstack fed join` again"
                )
            time.sleep(wait)
            wait = min(wait * 2, 5.0)
        if response.status_code >= 400:
            raise _error(response)
        return response


def _error(response: httpx.Response) -> FmstackError:
    try:
        message = str(response.json().get("message", response.text))
    except ValueError:
        message = response.text
    kind = {401: Unauthorized, 403: Unauthorized, 404: NotFound, 409: Conflict}.get(
        response.status_code, InvalidInput
    )
    return kind(f"coordinator: {message}")


def join(
    hub: HubApi,
    client: FederationClient,
    data: str,
    data_dir: Path,
    *,
    poll_s: float = 2.0,
    max_rounds: int | None = None,
    say: Say = lambda _m: None,
) -> JoinSummary:
    """Take part until the federation is done (or ``max_rounds`` updates were uploaded)."""
    summary = JoinSummary()
    model: LocalModel | None = None  # built at the first round, reused for the next ones
    while max_rounds is None or len(summary.rounds) < max_rounds:
        task = client.task()
        if task["action"] == "done":
            summary.final_status, summary.global_ref = task["message"], task["global_ref"]
            say(f"{client.federation}: {task['message']}; final global adapter {task['global_ref']}")
            return summary
        if task["action"] == "wait":
            time.sleep(poll_s)
            continue
        fed = FederationSpec.model_validate(task["spec"])
        if model is None or model.fed != fed:
            check_base(hub, fed.base, str(task.get("base_digest", "")))
            model = LocalModel(hub, fed)
        summary.rounds.append(_train_and_upload(hub, model, client, task, data, data_dir, say))
    return summary


def _train_and_upload(
    hub: HubApi,
    model: LocalModel,
    client: FederationClient,
    task: dict[str, Any],
    data: str,
    data_dir: Path,
    say: Say,
) -> dict[str, Any]:
    number = int(task["round"])
    say(f"round {number}: training {model.fed.method} locally on {data}")
    with scratch_dir(hub.settings.home, "fed") as work:
        global_file = work / "global.safetensors"
        client.download_global(number, global_file)
        result = model.train(data_dir, data, global_file, work)
    outcome = client.submit(number, result.weights, result.examples, result.metrics)
    status, reason = outcome["status"], outcome.get("reason", "")
    say(
        f"round {number}: update {status} ({len(result.weights)} bytes, {result.examples} examples, "
        f"local loss {result.metrics['train_loss']:.4f}){': ' + reason if reason else ''}"
    )
    return {
        "round": number,
        "status": status,
        "reason": reason,
        "bytes": len(result.weights),
        **result.metrics,
    }


def check_base(hub: HubApi, base: str, digest: str) -> None:
    """The base model must be here, with the coordinator's content (the adapter is trained on it)."""
    try:
        mine = hub.resolve(base)
    except NotFound:
        raise InvalidInput(
            f"the federation fine-tunes {base}, which this hub does not hold: import it (`fmstack hub "
            f"import-builtin` for fmstack/minilm-l6) or pull it (`fmstack hub pull {base}`) first"
        ) from None
    if digest and mine.digest != digest:
        raise InvalidInput(
            f"this hub's {base} differs from the coordinator's (digest {mine.digest[:12]} vs {digest[:12]}): "
            "pull the coordinator's version of the base model"
        )
