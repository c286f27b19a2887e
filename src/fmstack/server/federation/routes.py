"""The coordinator over HTTP: ``/api/v1/federations``.

Two kinds of caller. A federation's owner side uses account tokens: starting one needs write access
to its namespace (the global adapter is a repo there); adding client tokens and stopping it needs the
same; reading its status needs read access there. A client uses its federation token (``fmf_...``),
valid for its own federation's client routes only (task, global weights, updates, status): it reads
and writes nothing else on the server. Bodies of updates are bounded (twice the global adapter's
size); the weights are checked before they count (``federated.validate``).
"""

from __future__ import annotations

import dataclasses
import json
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import FileResponse
from pydantic import BaseModel, Field

from fmstack.errors import Forbidden, InvalidInput, Unauthorized
from fmstack.federated.spec import parse_spec
from fmstack.hub.entities import to_jsonable
from fmstack.server.access import Principal, principal
from fmstack.server.federation.tokens import is_federation_token
from fmstack.server.http_errors import UploadTooLarge
from fmstack.server.paths import repo_of
from fmstack.server.ratelimit import FailureLimiter

if TYPE_CHECKING:
    from fmstack.server.federation.coordinator import Coordinator
else:
    # The coordinator aggregates with torch (3 s and 220 MB per process to import): the first federation
    # request imports it, not every server start. FastAPI reads these annotations at run time.
    Coordinator = Any

router = APIRouter(prefix="/api/v1/federations")
Namespace = Annotated[str, Path(max_length=100)]
Name = Annotated[str, Path(max_length=100)]
Round = Annotated[int, Path(ge=1, le=1_000_000)]


class ClientBody(BaseModel):
    client: str = Field(min_length=1, max_length=100)


def coordinator(request: Request) -> Coordinator:
    from fmstack.server.federation.coordinator import Coordinator as Impl  # torch: see above

    return Impl(request.app.state.hub)


Coord = Annotated[Coordinator, Depends(coordinator)]


def _bearer(request: Request) -> str | None:
    header = request.headers.get("authorization")
    if header is None:
        return None
    scheme, _, token = header.partition(" ")
    return token.strip() if scheme.lower() == "bearer" else None


def client_of(request: Request, coord: Coordinator, name: str) -> str:
    """The client name of a valid federation token for ``name``; 401 otherwise (rate-limited alike)."""
    limiter: FailureLimiter = request.app.state.failures
    address = request.client.host if request.client else "?"
    token = _bearer(request)
    if token is None or not is_federation_token(token):
        raise Unauthorized(
            "this needs the federation token of a client (fmf_...): the federation's owner creates one "
            "with `fmstack fed token FEDERATION CLIENT`"
        )
    limiter.check(address)
    try:
        return coord.authenticate(name, token)
    except Unauthorized:
        limiter.failed(address)
        raise


def _owner(request: Request, namespace: str, doing: str) -> Principal:
    caller = principal(request)
    if caller.user is None:
        raise Unauthorized(f"{doing} needs a token: pass Authorization: Bearer <token> (`fmstack login`)")
    if not caller.can_write(namespace):
        raise Forbidden(
            f"{doing} needs write access to namespace {namespace!r} (a write token and the write role)"
        )
    return caller


@router.post("", status_code=201)
def start(request: Request, coord: Coord, body: dict[str, Any]) -> dict[str, Any]:
    if principal(request).user is None:  # who asks first: a spec's problems are for its writers
        raise Unauthorized("starting a federation needs a token: pass Authorization: Bearer <token>")
    spec = parse_spec(body)
    caller = _owner(request, spec.name.split("/")[0], "starting a federation")
    return _json(coord.start(spec, caller.name))


@router.get("/{namespace}/{name}")
def status(request: Request, coord: Coord, namespace: Namespace, name: Name) -> dict[str, Any]:
    fed = repo_of(namespace, name)
    token = _bearer(request)
    if token is not None and is_federation_token(token):
        client_of(request, coord, fed)
    else:
        caller = principal(request)
        if caller.user is None:
            raise Unauthorized(f"reading federation {fed!r} needs a token (an account's or a client's)")
        if caller.role_in(namespace) is None or "read" not in caller.scopes:
            raise Forbidden(f"reading federation {fed!r} needs read access to namespace {namespace!r}")
    coord.advance(fed)
    return _json(coord.status(fed))


@router.post("/{namespace}/{name}/clients", status_code=201)
def add_client(
    request: Request, coord: Coord, namespace: Namespace, name: Name, body: ClientBody
) -> dict[str, str]:
    fed = repo_of(namespace, name)
    _owner(request, namespace, "adding a client")
    return {"federation": fed, "client": body.client, "token": coord.add_client(fed, body.client)}


@router.post("/{namespace}/{name}/stop")
def stop(request: Request, coord: Coord, namespace: Namespace, name: Name) -> dict[str, Any]:
    fed = repo_of(namespace, name)
    _owner(request, namespace, "stopping a federation")
    return _json(coord.stop(fed))


@router.get("/{namespace}/{name}/task")
def task(request: Request, coord: Coord, namespace: Namespace, name: Name) -> dict[str, Any]:
    fed = repo_of(namespace, name)
    return _json(coord.task(fed, client_of(request, coord, fed)))


@router.get("/{namespace}/{name}/rounds/{number}/global")
def global_weights(
    request: Request, coord: Coord, namespace: Namespace, name: Name, number: Round
) -> FileResponse:
    fed = repo_of(namespace, name)
    client_of(request, coord, fed)
    return FileResponse(coord.global_file(fed, number), media_type="application/octet-stream")


@router.post("/{namespace}/{name}/rounds/{number}/updates")
async def update(
    request: Request,
    coord: Coord,
    namespace: Namespace,
    name: Name,
    number: Round,
    examples: Annotated[int, Query(ge=0, le=2**62)],
    metrics: Annotated[str, Query(max_length=10_000)] = "{}",
) -> dict[str, Any]:
    from starlette.concurrency import run_in_threadpool

    fed = repo_of(namespace, name)
    client = await run_in_threadpool(client_of, request, coord, fed)
    limit = 2 * (await run_in_threadpool(coord.global_file, fed, number)).stat().st_size + 2**16
    data = bytearray()
    async for chunk in request.stream():
        data += chunk
        if len(data) > limit:
            raise UploadTooLarge(
                f"an update of round {number} is at most {limit} bytes (twice the global adapter): is it "
                "the adapter_model.safetensors of this federation's adapter?"
            )
    reported = _metrics(metrics)
    outcome = await run_in_threadpool(coord.submit, fed, client, number, bytes(data), examples, reported)
    return _json(outcome)


def _metrics(text: str) -> dict[str, float]:
    try:
        raw = json.loads(text)
    except json.JSONDecodeError:
        raw = None
    if not isinstance(raw, dict) or len(raw) > 100:
        raise InvalidInput('metrics: a JSON object of at most 100 numbers, e.g. {"train_loss": 0.4}')
    out = {
        str(k)[:64]: float(v)
        for k, v in raw.items()
        if isinstance(v, int | float) and not isinstance(v, bool)
    }
    return {k: v for k, v in out.items() if v == v and abs(v) != float("inf")}


def _json(value: Any) -> dict[str, Any]:
    result: dict[str, Any] = to_jsonable(dataclasses.asdict(value))
    return result
