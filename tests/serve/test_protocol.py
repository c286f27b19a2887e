"""Protocol edges: ``GET /v1/models/{id}``, what the OpenAPI schema promises, error bodies that echo
no server file path and no unbounded client input, and a version that fails to load in a hot swap."""

from __future__ import annotations

import time
from collections.abc import Callable

import httpx
import openai
import pytest

from fmstack.errors import InvalidInput
from fmstack.hub import Hub, VersionInfo
from fmstack.serve import RunningServer, start_server
from fmstack.serve.models import hub_loader
from fmstack.serve.runtimes.base import Runtime
from tests.serve.conftest import settings
from tests.serve.test_app import _metric

Serve = Callable[..., RunningServer]


def test_a_model_is_retrieved_by_its_id(serve: Serve) -> None:
    server = serve(["acme/intent@production", "acme/embed-onnx"])
    with httpx.Client(base_url=server.url) as client:
        card = client.get("/v1/models/acme/intent@production")
        assert card.status_code == 200, card.text
        assert card.json()["version"] == "acme/intent:1" and card.json()["object"] == "model"
        assert client.get("/v1/models/acme/intent").json()["id"] == "acme/intent@production"
        missing = client.get("/v1/models/acme/nope")
        assert missing.status_code == 404 and "not served here" in missing.json()["error"]["message"]
    sdk = openai.OpenAI(base_url=f"{server.url}/v1", api_key="not-checked", max_retries=0)
    assert sdk.models.retrieve("acme/embed-onnx").id == "acme/embed-onnx"
    with pytest.raises(openai.NotFoundError):
        sdk.models.retrieve("acme/other")


def test_error_bodies_echo_client_input_bounded(serve: Serve) -> None:
    server = serve(["acme/intent"])
    name = "acme/" + "x" * 100_000
    with httpx.Client(base_url=server.url) as client:
        r = client.post("/v1/classify", json={"model": name, "input": "hi"})
        assert r.status_code == 404
        message = r.json()["error"]["message"]
        assert len(message) < 400 and "(100005 characters)" in message
        long_path = client.get("/v1/" + "y" * 20_000)
        assert long_path.status_code == 404 and len(long_path.json()["error"]["message"]) < 400


def test_the_openapi_schema_documents_every_answer(serve: Serve) -> None:
    server = serve(["acme/intent"])
    with httpx.Client(base_url=server.url) as client:
        paths = client.get("/openapi.json").json()["paths"]
    for path in ("/v1/embeddings", "/v1/classify"):
        assert {"200", "400", "404", "408", "413", "415", "422", "429", "503", "504"} <= set(
            paths[path]["post"]["responses"]
        ), path
    assert {"200", "404", "503"} <= set(paths["/v1/models/{model}"]["get"]["responses"])
    assert "503" in paths["/readyz"]["get"]["responses"]
    assert "text/plain" in paths["/metrics"]["get"]["responses"]["200"]["content"]


def test_a_version_that_fails_to_load_is_counted_and_shown_not_retried(served_hub: Hub) -> None:
    real = hub_loader(served_hub, 1)
    attempts: list[str] = []

    def load(ref: str) -> tuple[VersionInfo, Runtime]:
        version = served_hub.resolve(ref)
        attempts.append(version.ref)
        if version.number == 2:
            raise InvalidInput("/srv/secret/checkouts/acme-intent-2: no usable tokenizer")
        return real(ref)

    config = settings(["acme/intent@production"], poll_aliases_s=0.05)
    with (
        start_server(config, served_hub.settings, load=load) as server,
        httpx.Client(base_url=server.url) as client,
    ):
        served_hub.tag("acme/intent:2", "production")
        for _ in range(200):
            if _metric(client, "fmstack_serve_load_failures_total", model="acme/intent@production"):
                break
            time.sleep(0.05)
        time.sleep(0.5)  # ten more polls: the broken version is not loaded again
        ready = client.get("/readyz")
        assert ready.status_code == 200  # version 1 still serves
        assert ready.json()["models"] == {"acme/intent@production": "acme/intent:1"}
        why = ready.json()["load_failures"]["acme/intent@production"]
        assert why == "acme/intent:2 failed to load: .../acme-intent-2: no usable tokenizer"
        assert _metric(client, "fmstack_serve_load_failures_total", model="acme/intent@production") == 1
        assert attempts.count("acme/intent:2") == 1
        answer = client.post("/v1/classify", json={"model": "acme/intent@production", "input": "hi"})
        assert answer.json()["version"] == "acme/intent:1"
        served_hub.tag("acme/intent:1", "production")  # moved back: the failure is no longer news
        for _ in range(100):
            if "load_failures" not in client.get("/readyz").json():
                break
            time.sleep(0.05)
        assert "load_failures" not in client.get("/readyz").json()
