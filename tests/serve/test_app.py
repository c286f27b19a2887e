"""The HTTP API over real sockets (httpx against a running server): every endpoint, every error."""

from __future__ import annotations

import asyncio
import json
import math
import re
import socket
import threading
import time
from collections.abc import Callable

import httpx
import numpy as np
import pytest
from prometheus_client import generate_latest

from fmstack.hub import Hub
from fmstack.serve import RunningServer, ServeSettings, create_app, start_server
from fmstack.serve.models import hub_loader
from fmstack.serve.schemas import ClassifyResponse, EmbeddingResponse, InferResponse
from tests.serve.conftest import LABELS, settings

Serve = Callable[..., RunningServer]


def _metric(client: httpx.Client, name: str, **labels: str) -> float:
    """Sum of a Prometheus sample's values across series matching ``labels``."""
    total = 0.0
    for line in client.get("/metrics").text.splitlines():
        if not line.startswith(name + "{") and not line.startswith(name + " "):
            continue
        if all(f'{k}="{v}"' in line for k, v in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total


def test_classify_models_and_metrics(serve: Serve) -> None:
    server = serve(["acme/intent@production", "acme/intent-onnx"])
    with httpx.Client(base_url=server.url) as client:
        listed = client.get("/v1/models").json()
        assert {m["id"]: (m["version"], m["platform"]) for m in listed["data"]} == {
            "acme/intent@production": ("acme/intent:1", "pytorch"),
            "acme/intent-onnx": ("acme/intent-onnx:1", "onnxruntime"),
        }
        for model in ("acme/intent@production", "acme/intent-onnx"):
            r = client.post("/v1/classify", json={"model": model, "input": ["hi there", "refund please"]})
            assert r.status_code == 200, r.text
            body = r.json()
            ClassifyResponse.model_validate(body)  # the schema /docs shows
            assert [d["index"] for d in body["data"]] == [0, 1]
            for item in body["data"]:
                assert set(item["scores"]) == set(LABELS)
                assert item["label"] == max(item["scores"], key=item["scores"].get)
                assert math.isclose(sum(item["scores"].values()), 1.0, rel_tol=1e-4)
            assert body["usage"]["prompt_tokens"] > 4
        # The PyTorch and ONNX versions hold the same weights: the same answers.
        a = client.post("/v1/classify", json={"model": "acme/intent", "input": "where is my refund"}).json()
        b = client.post(
            "/v1/classify", json={"model": "acme/intent-onnx", "input": "where is my refund"}
        ).json()
        assert a["version"] == "acme/intent:1" and b["version"] == "acme/intent-onnx:1"
        for label in LABELS:
            assert abs(a["data"][0]["scores"][label] - b["data"][0]["scores"][label]) < 1e-4
        assert _metric(client, "fmstack_serve_requests_total", model="acme/intent-onnx", status="200") == 2
        assert _metric(client, "fmstack_serve_batch_size_count", model="acme/intent-onnx") >= 1
        assert _metric(client, "fmstack_serve_tokens_total", model="acme/intent-onnx") > 0
        assert _metric(client, "fmstack_serve_model_version", model="acme/intent@production") == 1
        text = client.get("/metrics").text
        assert "fmstack_serve_request_seconds_bucket" in text and "fmstack_serve_queue_depth" in text


def test_embeddings_float_and_base64(serve: Serve) -> None:
    server = serve(["acme/embed", "acme/embed-onnx"])
    with httpx.Client(base_url=server.url) as client:
        floats = client.post("/v1/embeddings", json={"model": "acme/embed", "input": ["a cat", "a dog"]})
        assert floats.status_code == 200, floats.text
        body = floats.json()
        EmbeddingResponse.model_validate(body)  # the schema /docs shows
        assert body["object"] == "list" and body["model"] == "acme/embed"
        vectors = np.array([d["embedding"] for d in body["data"]])
        assert vectors.shape == (2, 32)
        np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1, atol=1e-5)
        assert body["usage"] == {"prompt_tokens": 8, "total_tokens": 8}  # [CLS] a cat [SEP] x 2
        b64 = client.post(
            "/v1/embeddings", json={"model": "acme/embed-onnx", "input": "a cat", "encoding_format": "base64"}
        ).json()
        import base64

        decoded = np.frombuffer(base64.b64decode(b64["data"][0]["embedding"]), dtype="<f4")
        np.testing.assert_allclose(decoded, vectors[0], atol=1e-4)  # ONNX export of the same weights


def test_kserve_v2(serve: Serve) -> None:
    server = serve(["acme/intent-onnx", "acme/embed"])
    with httpx.Client(base_url=server.url) as client:
        assert client.get("/v2/health/live").json() == {"live": True}
        assert client.get("/v2/health/ready").status_code == 200
        assert client.get("/v2/models/acme/intent-onnx/ready").json() == {
            "name": "acme/intent-onnx",
            "ready": True,
        }
        meta = client.get("/v2/models/acme/intent-onnx").json()
        assert meta["platform"] == "onnxruntime" and meta["versions"] == ["1"]
        assert meta["inputs"] == [{"name": "text", "datatype": "BYTES", "shape": [-1]}]
        request = {
            "id": "r1",
            "inputs": [{"name": "text", "shape": [2], "datatype": "BYTES", "data": ["hi", "yo"]}],
        }
        out = client.post("/v2/models/acme/intent-onnx/infer", json=request).json()
        InferResponse.model_validate(out)  # the schema /docs shows
        assert out["model_name"] == "acme/intent-onnx" and out["id"] == "r1"
        labels, scores = out["outputs"]
        assert labels["datatype"] == "BYTES" and labels["shape"] == [2] and set(labels["data"]) <= set(LABELS)
        assert scores["shape"] == [2, 3] and len(scores["data"]) == 6
        emb = client.post("/v2/models/acme/embed/infer", json=request).json()["outputs"][0]
        assert emb["name"] == "embedding" and emb["shape"] == [2, 32] and len(emb["data"]) == 64
        bad = client.post(
            "/v2/models/acme/embed/infer",
            json={"inputs": [{"name": "text", "shape": [3], "datatype": "BYTES", "data": ["a"]}]},
        )
        assert bad.status_code == 422 and "shape [3] holds 3 texts, data has 1" in bad.json()["error"]
        assert client.get("/v2/models/acme/nope").status_code == 404
        for endpoint in ("/v2/models/{name}", "/v2/models/{name}/ready", "/v2/models/{name}/infer"):
            labels = {"model": "acme/intent-onnx", "endpoint": endpoint, "status": "200"}
            assert _metric(client, "fmstack_serve_requests_total", **labels) == 1


def test_errors_are_openai_shaped_and_name_the_limit(serve: Serve) -> None:
    server = serve(["acme/embed", "acme/intent"], max_inputs=4, max_body_bytes=2048)
    with httpx.Client(base_url=server.url) as client:

        def error(path: str, body: object, status: int) -> str:
            r = client.post(path, json=body)
            assert r.status_code == status, r.text
            err = r.json()["error"]
            assert set(err) == {"message", "type", "param", "code"}
            return str(err["message"])

        assert "not served here" in error("/v1/embeddings", {"model": "acme/nope", "input": "x"}, 404)
        too_long = " ".join(["word"] * 80)  # the tiny models accept 64 tokens
        assert re.search(
            r"input 1 has \d+ tokens; .* at most 64",
            error("/v1/embeddings", {"model": "acme/embed", "input": ["ok", too_long]}, 422),
        )
        assert "limit is 4 (--max-inputs)" in error(
            "/v1/embeddings", {"model": "acme/embed", "input": ["a"] * 5}, 413
        )
        assert "over the limit of 2048" in error(
            "/v1/embeddings", {"model": "acme/embed", "input": ["a" * 3000]}, 413
        )
        assert "token ids" in error("/v1/embeddings", {"model": "acme/embed", "input": [1, 2, 3]}, 422)
        assert "use /v1/classify" in error("/v1/embeddings", {"model": "acme/intent", "input": "x"}, 400)
        assert "use /v1/embeddings" in error("/v1/classify", {"model": "acme/embed", "input": "x"}, 400)
        assert "'input' is empty" in error("/v1/classify", {"model": "acme/intent", "input": []}, 422)
        assert "input 1 is empty or only whitespace" in error(
            "/v1/embeddings", {"model": "acme/embed", "input": ["ok", " "]}, 422
        )
        assert "input 0 is empty" in error("/v1/classify", {"model": "acme/intent", "input": ""}, 422)
        form = client.post(
            "/v1/classify",
            content=b'{"model": "acme/intent", "input": "x"}',
            headers={"content-type": "application/x-www-form-urlencoded"},
        )
        assert form.status_code == 415 and "Content-Type: application/json" in form.json()["error"]["message"]
        assert "model: Field required" in error("/v1/classify", {"input": "x"}, 422)
        assert _metric(client, "fmstack_serve_requests_total", model="acme/embed", status="413") == 1
        # Label values come from what the server serves, never from what a client sends: a label per
        # unknown model or path would let clients grow /metrics without bound.
        assert client.post("/v1/nope", json={}).status_code == 404
        text = client.get("/metrics").text
        assert "acme/nope" not in text and "/v1/nope" not in text
        assert _metric(client, "fmstack_serve_requests_total", model="", status="404") == 1


def test_inference_routes_answered_directly_are_still_documented(serve: Serve) -> None:
    """``serve.fast_path`` answers the inference routes before FastAPI's router: they stay in the OpenAPI
    schema, a malformed body still gets the app's 422, and other methods still reach FastAPI."""
    server = serve(["acme/embed"])
    with httpx.Client(base_url=server.url) as client:
        paths = client.get("/openapi.json").json()["paths"]
        assert {"/v1/embeddings", "/v1/classify", "/v2/models/{name}/infer"} <= set(paths)
        broken = client.post(
            "/v1/embeddings",
            content=b'{"model": "acme/embed", "input": ',
            headers={"content-type": "application/json"},
        )
        assert broken.status_code == 422 and "invalid request body" in broken.json()["error"]["message"]
        assert client.post("/v2/models/acme/embed/infer", content=b"[]").status_code == 422
        # FastAPI's own 404 and 405 answer in the same shapes as every other error
        for method, path, status in [("GET", "/v1/embeddings", 405), ("GET", "/v1/nothing", 404)]:
            r = client.request(method, path)
            assert r.status_code == status and set(r.json()["error"]) == {"message", "type", "param", "code"}
        wrong = client.get("/v2/models/acme/embed/infer")
        assert wrong.status_code == 405 and wrong.headers["allow"] == "POST"
        assert wrong.json() == {"error": "Method Not Allowed: GET /v2/models/acme/embed/infer"}


def test_a_full_queue_answers_429_with_retry_after(serve: Serve) -> None:
    # The first request waits up to 1.5 s for company, filling the queue of 2 texts.
    server = serve(["acme/intent"], max_queue=2, max_wait_ms=1500, max_batch_size=64)

    async def scenario() -> tuple[httpx.Response, httpx.Response]:
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
            first = asyncio.create_task(
                client.post("/v1/classify", json={"model": "acme/intent", "input": ["a", "b"]})
            )
            await asyncio.sleep(0.3)
            second = await client.post("/v1/classify", json={"model": "acme/intent", "input": "c"})
            return await first, second

    first, second = asyncio.run(scenario())
    assert first.status_code == 200
    assert second.status_code == 429
    assert int(second.headers["Retry-After"]) >= 1
    assert "--max-queue 2" in second.json()["error"]["message"]


def test_a_request_past_its_deadline_gets_504(serve: Serve) -> None:
    server = serve(["acme/intent"], max_wait_ms=2000, request_timeout_s=0.3)
    with httpx.Client(base_url=server.url, timeout=10) as client:
        r = client.post("/v1/classify", json={"model": "acme/intent", "input": "slow"})
        assert r.status_code == 504
        assert "deadline" in r.json()["error"]["message"]
        assert _metric(client, "fmstack_serve_requests_total", status="504") == 1


def test_a_disconnected_client_is_dropped_before_compute(serve: Serve) -> None:
    server = serve(["acme/intent"], max_wait_ms=1500)
    with httpx.Client(base_url=server.url, timeout=0.3) as client, pytest.raises(httpx.ReadTimeout):
        client.post("/v1/classify", json={"model": "acme/intent", "input": ["gone", "too"]})
    with httpx.Client(base_url=server.url) as client:
        for _ in range(50):  # the worker notices when the batch would have run
            if _metric(client, "fmstack_serve_dropped_total", reason="disconnected") == 2:
                break
            threading.Event().wait(0.1)
        assert _metric(client, "fmstack_serve_dropped_total", reason="disconnected") == 2
        assert _metric(client, "fmstack_serve_batch_size_count") == 0  # nothing was computed
        assert _metric(client, "fmstack_serve_requests_total", status="499") == 1


def test_readyz_is_503_until_the_models_are_loaded(served_hub: Hub) -> None:
    gate = threading.Event()
    real = hub_loader(served_hub, 1)

    def slow_load(ref: str):  # type: ignore[no-untyped-def]
        gate.wait(10)
        return real(ref)

    config: ServeSettings = settings(["acme/intent"])
    with (
        start_server(config, served_hub.settings, wait=False, load=slow_load) as server,
        httpx.Client(base_url=server.url) as client,
    ):
        for _ in range(100):
            try:
                not_ready = client.get("/readyz")
                break
            except httpx.TransportError:
                threading.Event().wait(0.05)
        assert not_ready.status_code == 503 and not_ready.json()["reason"] == "loading"
        assert client.get("/healthz").status_code == 200
        assert client.get("/v2/health/ready").status_code == 503
        assert client.post("/v1/classify", json={"model": "acme/intent", "input": "x"}).status_code == 503
        gate.set()
        server.wait_ready(30)
        assert client.get("/readyz").json()["models"] == {"acme/intent": "acme/intent:2"}


def test_a_model_that_cannot_load_stops_the_server_with_the_reason(served_hub: Hub) -> None:
    from fmstack.serve import ServeFailed

    with pytest.raises(ServeFailed, match="acme/missing"):
        start_server(settings(["acme/missing"]), served_hub.settings, timeout_s=30)


@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
def test_keep_alive_responses_are_not_held_back_by_nagle(served_hub: Hub, loop: str) -> None:
    # With Nagle's algorithm on, each keep-alive response (headers, then body) waits for the client's
    # delayed ACK: >= 40 ms per request, so 20 requests would take >= 0.8 s. asyncio turns it off only
    # on sockets created with proto IPPROTO_TCP (uvloop on every TCP socket).
    with (
        start_server(settings(["acme/embed-onnx"]), served_hub.settings, loop=loop) as server,  # type: ignore[arg-type]
        socket.create_connection((server.url.removeprefix("http://").split(":")[0], server.port)) as sock,
    ):
        start = time.perf_counter()
        for _ in range(20):
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: test\r\n\r\n")
            data = b""
            while not data.endswith(b'{"status":"ok"}'):
                data += sock.recv(65536)
        assert time.perf_counter() - start < 0.6


@pytest.mark.anyio
async def test_under_another_asgi_server_a_disconnect_is_watched_on_the_loop(served_hub: Hub) -> None:
    """Under uvicorn the batch worker reads the connection's own disconnected flag. Another ASGI server
    gives no such flag: the request then awaits ``http.disconnect`` itself, with the same outcome (its
    texts dropped before compute, 499)."""
    app = create_app(settings(["acme/intent"], max_wait_ms=1500), served_hub.settings)
    body = json.dumps({"model": "acme/intent", "input": ["gone", "too"]}).encode()
    request = [{"type": "http.request", "body": body, "more_body": False}]
    left = asyncio.Event()

    async def receive() -> dict[str, object]:  # a plain function: no uvicorn cycle behind it
        if request:
            return request.pop()
        await left.wait()
        return {"type": "http.disconnect"}

    sent: list[dict[str, object]] = []

    async def send(message: dict[str, object]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/v1/classify",
        "raw_path": b"/v1/classify",
        "query_string": b"",
        "root_path": "",
        "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
        "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 80),
        "state": {},
    }
    async with app.router.lifespan_context(app):
        state = app.state.server
        for _ in range(100):
            if state.ready:
                break
            await asyncio.sleep(0.05)
        answer = asyncio.create_task(app(scope, receive, send))
        await asyncio.sleep(0.2)  # queued, waiting for company (--max-wait-ms 1500)
        left.set()
        await asyncio.wait_for(answer, 5)
        dropped = 'fmstack_serve_dropped_total{model="acme/intent",reason="disconnected"} 2.0'
        for _ in range(50):  # the worker notices when the batch would have run
            text = generate_latest(state.metrics.registry).decode()
            if dropped in text:
                break
            await asyncio.sleep(0.1)
    assert sent[0]["status"] == 499
    assert dropped in text
    assert 'fmstack_serve_batch_size_count{model="acme/intent"} 0.0' in text
