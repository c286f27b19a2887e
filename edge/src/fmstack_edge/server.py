"""``fmstack-edge serve``: a small local HTTP server with ``fmstack serve``'s ``/v1/classify`` and
``/v1/embeddings`` request and response shapes (and its OpenAI-style error body).

The standard library's threading HTTP server, not FastAPI: a device runtime must stay small (see the
distribution's dependencies), and one model behind a few routes needs no framework. Every request is
bounded (body bytes, texts, characters) before any work is done. The model behind it may be swapped
at any time by the agent (``Served.swap``); a request uses the model it started with.
"""

from __future__ import annotations

import base64
import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import numpy as np

from fmstack_edge.errors import BadInput, EdgeError
from fmstack_edge.model import Model

log = logging.getLogger("fmstack_edge.server")


@dataclass(frozen=True)
class Limits:
    max_body_bytes: int = 1_000_000
    max_inputs: int = 256
    max_input_chars: int = 20_000


@dataclass(frozen=True)
class Current:
    model: Model
    name: str  # what clients put in "model"
    version: str  # what answered, e.g. acme/intent:3 or the folder served


class Served:
    """The model being served; the agent swaps it after an update, atomically for requests."""

    def __init__(self, current: Current | None = None) -> None:
        self._current = current
        self._lock = threading.Lock()

    def get(self) -> Current | None:
        with self._lock:
            return self._current

    def swap(self, current: Current) -> None:
        with self._lock:
            self._current = current


def _texts(body: dict[str, Any], limits: Limits) -> list[str]:
    raw = body.get("input")
    texts = [raw] if isinstance(raw, str) else raw
    if not isinstance(texts, list) or not texts or not all(isinstance(t, str) for t in texts):
        raise BadInput("'input' must be a string or a non-empty list of strings")
    if len(texts) > limits.max_inputs:
        raise BadInput(f"{len(texts)} inputs; at most {limits.max_inputs} per request", status=413)
    for index, text in enumerate(texts):
        if len(text) > limits.max_input_chars:
            raise BadInput(
                f"input {index} has {len(text)} characters; at most {limits.max_input_chars}", status=413
            )
    return texts


def _checked(body: object, allowed: set[str]) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise BadInput("the body must be a JSON object")
    unknown = sorted(set(body) - allowed)
    if unknown:
        raise BadInput(f"unknown fields {unknown}; allowed: {sorted(allowed)}")
    if not isinstance(body.get("model"), str):
        raise BadInput("'model' (a string) is required")
    if not isinstance(body.get("truncate", False), bool):
        raise BadInput("'truncate' must be true or false")
    return body


def classify(current: Current, body: dict[str, Any], limits: Limits) -> dict[str, Any]:
    body = _checked(body, {"model", "input", "truncate"})
    texts = _texts(body, limits)
    ids = current.model.encode(texts, body.get("truncate", False))
    rows = current.model.forward(ids) if current.model.task == "classification" else None
    if rows is None:
        raise BadInput(f"model {current.name!r} serves embeddings: POST /v1/embeddings", status=400)
    labels = current.model.labels
    best = np.argmax(rows, axis=1)  # (texts,)
    threshold = current.model.descriptor.fallback_threshold
    data = [
        {
            "index": i,
            "label": labels[int(best[i])],
            "scores": dict(zip(labels, row, strict=True)),
            "fallback": threshold is not None and max(row) < threshold,
        }
        for i, row in enumerate(rows.tolist())
    ]
    tokens = sum(map(len, ids))
    usage = {"prompt_tokens": tokens, "total_tokens": tokens}
    return {"model": current.name, "version": current.version, "data": data, "usage": usage}


def embeddings(current: Current, body: dict[str, Any], limits: Limits) -> dict[str, Any]:
    # OpenAI's clients send extra fields (user, ...): accepted and ignored, as fmstack serve does.
    body = _checked(body, set(body) if isinstance(body, dict) else set())
    texts = _texts(body, limits)
    encoding = body.get("encoding_format", "float")
    if encoding not in ("float", "base64"):
        raise BadInput("'encoding_format' must be 'float' or 'base64'")
    if current.model.task != "embedding":
        raise BadInput(f"model {current.name!r} serves classification: POST /v1/classify", status=400)
    ids = current.model.encode(texts, body.get("truncate", False))
    rows = current.model.forward(ids)  # (texts, dimensions)
    dims = body.get("dimensions")
    if dims is not None and dims != rows.shape[1]:
        raise BadInput(
            f"model {current.name!r} returns {rows.shape[1]}-dimensional vectors; 'dimensions' {dims} "
            "is not supported (omit it)"
        )
    if encoding == "base64":  # little-endian float32, as OpenAI sends it
        vectors: list[Any] = [base64.b64encode(r.astype("<f4").tobytes()).decode() for r in rows]
    else:
        vectors = rows.tolist()
    data = [{"object": "embedding", "index": i, "embedding": v} for i, v in enumerate(vectors)]
    tokens = sum(map(len, ids))
    usage = {"prompt_tokens": tokens, "total_tokens": tokens}
    return {"object": "list", "data": data, "model": current.name, "usage": usage}


ROUTES: dict[str, Callable[[Current, dict[str, Any], Limits], dict[str, Any]]] = {
    "/v1/classify": classify,
    "/v1/embeddings": embeddings,
}


def _error(status: int, message: str) -> dict[str, Any]:
    kind = "invalid_request_error" if status < 500 else "server_error"
    return {"error": {"message": message, "type": kind, "param": None, "code": None}}


def make_handler(served: Served, limits: Limits) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "fmstack-edge"
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            log.debug("%s " + format, self.address_string(), *args)

        def _send(self, status: int, payload: dict[str, Any]) -> None:
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            current = served.get()
            if self.path in ("/healthz", "/readyz"):
                if current is None:
                    self._send(503, {"status": "not ready", "reason": "no model installed yet"})
                else:
                    self._send(200, {"status": "ready", "models": {current.name: current.version}})
            elif self.path == "/v1/models":
                models = [] if current is None else [_card(current)]
                self._send(200, {"object": "list", "data": models})
            else:
                self._send(404, _error(404, f"no route {self.path}; try POST /v1/classify or /v1/embeddings"))

        def do_POST(self) -> None:
            route = ROUTES.get(self.path)
            try:
                length = int(self.headers.get("Content-Length") or -1)
            except ValueError:
                length = -1
            if route is None:
                self._send(404, _error(404, f"no route {self.path}; try POST /v1/classify or /v1/embeddings"))
            elif length < 0:
                self._send(411, _error(411, "send a Content-Length header"))
            elif length > limits.max_body_bytes:
                self.close_connection = True  # the unread body must not be parsed as the next request
                self._send(413, _error(413, f"body of {length} bytes; at most {limits.max_body_bytes}"))
            else:
                self._answer(route, self.rfile.read(length))

        def _answer(
            self, route: Callable[[Current, dict[str, Any], Limits], dict[str, Any]], raw: bytes
        ) -> None:
            current = served.get()
            if current is None:
                self._send(503, _error(503, "no model installed yet; the agent is fetching one"))
                return
            try:
                body = json.loads(raw)
            except ValueError as exc:  # not JSON, or not UTF-8
                self._send(422, _error(422, f"the body is not valid JSON: {exc}"))
                return
            try:
                if isinstance(body, dict) and body.get("model") not in (None, current.name):
                    raise BadInput(
                        f"no model {body['model']!r} here; this device serves {current.name!r}", 404
                    )
                self._send(200, route(current, body, limits))
            except BadInput as exc:
                self._send(exc.status, _error(exc.status, str(exc)))
            except EdgeError as exc:
                self._send(503, _error(503, str(exc)))

    return Handler


def _card(current: Current) -> dict[str, Any]:
    return {
        "id": current.name,
        "object": "model",
        "created": int(time.time()),
        "owned_by": current.name.split("/")[0],
        "version": current.version,
        "task": current.model.task,
        "platform": "onnxruntime",
    }


def start(served: Served, host: str, port: int, limits: Limits | None = None) -> ThreadingHTTPServer:
    """A server answering in threads of its own (``serve_forever`` in a daemon thread); ``shutdown()``
    and ``server_close()`` stop it."""
    httpd = ThreadingHTTPServer((host, port), make_handler(served, limits or Limits()))
    httpd.daemon_threads = True
    threading.Thread(target=httpd.serve_forever, name="fmstack-edge-http", daemon=True).start()
    return httpd
