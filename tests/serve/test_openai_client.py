"""The official ``openai`` client against ``/v1/embeddings`` of a real running server (loopback)."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import numpy as np
import openai
import pytest

from fmstack.serve import RunningServer


def test_the_openai_client_gets_the_same_vectors_as_plain_http(serve: Callable[..., RunningServer]) -> None:
    server = serve(["acme/embed-onnx"])
    client = openai.OpenAI(base_url=f"{server.url}/v1", api_key="not-checked", max_retries=0)
    texts = ["the cat sat", "refund my order", "hello"]
    # The client asks for base64 by default and decodes it; ask for floats too.
    default = client.embeddings.create(model="acme/embed-onnx", input=texts)
    floats = client.embeddings.create(model="acme/embed-onnx", input=texts, encoding_format="float")
    plain = httpx.post(
        f"{server.url}/v1/embeddings", json={"model": "acme/embed-onnx", "input": texts}
    ).json()
    expected = np.array([d["embedding"] for d in plain["data"]], dtype=np.float32)
    assert [d.index for d in default.data] == [0, 1, 2]
    np.testing.assert_allclose(np.array([d.embedding for d in default.data]), expected, atol=1e-6)
    np.testing.assert_allclose(np.array([d.embedding for d in floats.data]), expected, atol=1e-6)
    assert default.model == "acme/embed-onnx"
    assert default.usage.prompt_tokens == default.usage.total_tokens == plain["usage"]["prompt_tokens"] > 0
    single = client.embeddings.create(model="acme/embed-onnx", input="hello")
    np.testing.assert_allclose(single.data[0].embedding, expected[2], atol=1e-6)
    assert [m.id for m in client.models.list()] == ["acme/embed-onnx"]


def test_the_openai_client_raises_its_own_typed_errors(serve: Callable[..., RunningServer]) -> None:
    server = serve(["acme/embed-onnx"])
    client = openai.OpenAI(base_url=f"{server.url}/v1", api_key="not-checked", max_retries=0)
    with pytest.raises(openai.NotFoundError, match="not served here"):
        client.embeddings.create(model="acme/other", input="x")
    with pytest.raises(openai.UnprocessableEntityError, match="at most 64"):
        client.embeddings.create(model="acme/embed-onnx", input="word " * 100)
