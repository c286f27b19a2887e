"""KServe v2 through the real ``tritonclient.http`` client with its default options, against a running
server on a loopback port; the binary tensor data extension also byte by byte with httpx."""

from __future__ import annotations

import asyncio
import struct
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import httpx
import numpy as np
import pytest
import tritonclient.http as triton
from tritonclient.utils import InferenceServerException

from fmstack.errors import InvalidInput
from fmstack.hub import Hub
from fmstack.serve import RunningServer
from fmstack.serve.binary_tensors import binary_parts, decode_bytes, encode_bytes, split_body
from tests.serve.conftest import LABELS
from tests.serve.test_app import _metric

Serve = Callable[..., RunningServer]
TEXTS = ["where is my refund", "hello there", "héllo, wörld"]


def _client(server: RunningServer) -> triton.InferenceServerClient:
    return triton.InferenceServerClient(urlsplit(server.url).netloc)  # host:port, no scheme


def _text_input(texts: list[str], binary: bool) -> triton.InferInput:
    tensor = triton.InferInput("text", [len(texts)], "BYTES")
    tensor.set_data_from_numpy(np.array(texts, dtype=object), binary_data=binary)
    return tensor


def _json_answer(server: RunningServer, model: str, texts: list[str]) -> dict[str, list[object]]:
    """Every output of a plain JSON request, by name: what the binary paths must equal."""
    request = {"inputs": [{"name": "text", "shape": [len(texts)], "datatype": "BYTES", "data": texts}]}
    answer = httpx.post(f"{server.url}/v2/models/{model}/infer", json=request).json()
    return {o["name"]: o["data"] for o in answer["outputs"]}


def test_tritonclient_reads_server_and_model_metadata(serve: Serve) -> None:
    server = serve(["acme/intent@production", "acme/embed-onnx"])
    client = _client(server)
    assert client.is_server_live() and client.is_server_ready()
    meta = client.get_server_metadata()
    assert meta["name"] == "fmstack" and "binary_tensor_data" in meta["extensions"]
    # '@' in the name: the client percent-encodes it, the server reads it back.
    assert client.is_model_ready("acme/intent@production")
    assert client.is_model_ready("acme/intent@production", model_version="1")
    assert not client.is_model_ready("acme/intent@production", model_version="2")  # 2 exists, not served
    model = client.get_model_metadata("acme/intent@production", model_version="1")
    assert model["versions"] == ["1"] and model["platform"] == "pytorch"
    assert [o["name"] for o in model["outputs"]] == ["label", "scores"]
    assert model["outputs"][1]["shape"] == [-1, len(LABELS)]
    config = client.get_model_config("acme/embed-onnx")
    assert config["input"] == [{"name": "text", "data_type": "TYPE_STRING", "dims": [-1]}]
    assert config["output"] == [{"name": "embedding", "data_type": "TYPE_FP32", "dims": [-1, 32]}]
    assert config["parameters"]["hub_version"] == {"string_value": "acme/embed-onnx:1"}
    assert client.get_model_config("acme/embed-onnx", model_version="1") == config
    with pytest.raises(InferenceServerException, match="version '7' is not served here; it serves version 1"):
        client.get_model_metadata("acme/embed-onnx", model_version="7")
    with pytest.raises(InferenceServerException, match="not served here"):
        client.get_model_metadata("acme/nope")
    with pytest.raises(InferenceServerException, match="not Triton's statistics"):
        client.get_inference_statistics("acme/embed-onnx")
    with httpx.Client(base_url=server.url) as http:
        config_calls = {"endpoint": "/v2/models/{name}/config", "model": "acme/embed-onnx", "status": "200"}
        assert _metric(http, "fmstack_serve_requests_total", **config_calls) == 2


@pytest.mark.parametrize("binary_input", [False, True], ids=["json-input", "binary-input"])
def test_tritonclient_infer_with_default_outputs_matches_json(serve: Serve, binary_input: bool) -> None:
    server = serve(["acme/intent-onnx", "acme/embed-onnx"])
    client = _client(server)
    # No outputs named: the client asks for every output in binary (binary_data_output).
    result = client.infer("acme/intent-onnx", [_text_input(TEXTS, binary_input)], request_id="r1")
    expected = _json_answer(server, "acme/intent-onnx", TEXTS)
    response = result.get_response()
    assert response["id"] == "r1" and response["model_version"] == "1"
    assert all("binary_data_size" in o["parameters"] for o in response["outputs"])
    labels = result.as_numpy("label")
    assert labels is not None and [x.decode() for x in labels] == expected["label"]
    scores = result.as_numpy("scores")
    assert scores is not None and scores.dtype == np.float32 and scores.shape == (3, len(LABELS))
    np.testing.assert_array_equal(scores.ravel(), np.array(expected["scores"], dtype=np.float32))
    vectors = client.infer("acme/embed-onnx", [_text_input(TEXTS, binary_input)]).as_numpy("embedding")
    assert vectors is not None and vectors.shape == (3, 32)
    expected_vectors = _json_answer(server, "acme/embed-onnx", TEXTS)["embedding"]
    np.testing.assert_array_equal(vectors.ravel(), np.array(expected_vectors, dtype=np.float32))


def test_tritonclient_requested_outputs_json_binary_and_top_classes(serve: Serve) -> None:
    server = serve(["acme/intent-onnx"])
    client = _client(server)
    outputs = [
        triton.InferRequestedOutput("scores", binary_data=False),
        triton.InferRequestedOutput("label"),  # binary by default
    ]
    result = client.infer("acme/intent-onnx", [_text_input(TEXTS, True)], outputs=outputs)
    expected = _json_answer(server, "acme/intent-onnx", TEXTS)
    assert [o["name"] for o in result.get_response()["outputs"]] == ["scores", "label"]
    scores_json = result.get_output("scores")
    assert scores_json is not None and scores_json["data"] == pytest.approx(expected["scores"])
    labels = result.as_numpy("label")
    assert labels is not None and [x.decode() for x in labels] == expected["label"]
    only = client.infer(
        "acme/intent-onnx",
        [_text_input(TEXTS, False)],
        outputs=[triton.InferRequestedOutput("scores", class_count=2)],
    )
    top = only.as_numpy("scores")
    assert top is not None and top.shape == (3, 2)
    scores = np.array(expected["scores"], dtype=np.float32).reshape(3, len(LABELS))
    for row, best in zip(scores, top, strict=True):
        value, index, label = best[0].decode().split(":")
        assert int(index) == int(np.argmax(row)) and label == LABELS[int(index)]
        assert float(value) == pytest.approx(float(row.max()), rel=1e-6)


def test_tritonclient_errors_are_clear(serve: Serve) -> None:
    server = serve(["acme/intent-onnx"])
    client = _client(server)
    with pytest.raises(
        InferenceServerException, match="has no output 'logits'; its outputs are label, scores"
    ):
        client.infer(
            "acme/intent-onnx",
            [_text_input(TEXTS, True)],
            outputs=[triton.InferRequestedOutput("logits")],
        )
    with pytest.raises(InferenceServerException, match="version '2' is not served here"):
        client.infer("acme/intent-onnx", [_text_input(TEXTS, False)], model_version="2")
    result = client.infer("acme/intent-onnx", [_text_input(TEXTS, False)], model_version="1")
    assert result.get_response()["model_version"] == "1"
    with pytest.raises(InferenceServerException, match="input 1 is empty"):
        client.infer("acme/intent-onnx", [_text_input(["a", " "], True)])


def test_binary_requests_byte_by_byte(serve: Serve) -> None:
    server = serve(["acme/intent-onnx"])
    url = f"{server.url}/v2/models/acme/intent-onnx/infer"
    texts = encode_bytes([b"hello", b"refund"])
    head = (
        b'{"inputs":[{"name":"text","shape":[2],"datatype":"BYTES",'
        b'"parameters":{"binary_data_size":%d}}],"outputs":[{"name":"label"}]}' % len(texts)
    )
    ok = httpx.post(url, content=head + texts, headers={"Inference-Header-Content-Length": str(len(head))})
    assert ok.status_code == 200 and ok.headers["content-type"] == "application/json"
    assert len(ok.json()["outputs"][0]["data"]) == 2
    short = httpx.post(
        url, content=head + texts[:-1], headers={"Inference-Header-Content-Length": str(len(head))}
    )
    assert short.status_code == 422
    assert short.json()["error"].startswith("the input tensors declare 19 bytes of binary data")
    no_header = httpx.post(url, content=head + texts)
    assert no_header.status_code == 422  # the JSON parser meets the binary part
    bad = encode_bytes([b"\xff\xfe"])
    bad_head = head.replace(b"%d" % len(texts), b"%d" % len(bad)).replace(b"[2]", b"[1]")
    not_utf8 = httpx.post(
        url, content=bad_head + bad, headers={"Inference-Header-Content-Length": str(len(bad_head))}
    )
    assert not_utf8.json() == {"error": "input 'text': element 0 is not UTF-8 text"}
    unknown = httpx.post(
        url,
        json={
            "inputs": [{"name": "text", "shape": [1], "datatype": "BYTES", "data": ["hi"]}],
            "outputs": [{"name": "scores", "parameters": {"shared_memory_region": "r"}}],
        },
    )
    assert unknown.status_code == 400 and "shared memory" in unknown.json()["error"]


def test_binary_tensor_helpers() -> None:
    encoded = encode_bytes([b"", b"ab", "é".encode()])
    assert (
        encoded == struct.pack("<I", 0) + struct.pack("<I", 2) + b"ab" + struct.pack("<I", 2) + "é".encode()
    )
    assert decode_bytes("t", encoded) == [b"", b"ab", "é".encode()]
    with pytest.raises(InvalidInput, match="says 9 bytes, only 1 are left"):
        decode_bytes("t", struct.pack("<I", 9) + b"x")
    with pytest.raises(InvalidInput, match="inside an element's 4-byte length"):
        decode_bytes("t", b"\x01\x00")
    assert split_body(b'{"a":1}xyz', "7") == (b'{"a":1}', b"xyz")
    with pytest.raises(InvalidInput, match="longer than the 3-byte request body"):
        split_body(b"abc", "4")
    assert binary_parts([("a", 2), ("b", None), ("c", 1)], b"xyz") == {"a": b"xy", "c": b"z"}


def test_compressed_bodies_are_refused_by_name(serve: Serve) -> None:
    server = serve(["acme/intent-onnx"])
    client = _client(server)
    with pytest.raises(InferenceServerException, match="gzip-encoded; this server reads uncompressed"):
        client.infer("acme/intent-onnx", [_text_input(TEXTS, True)], request_compression_algorithm="gzip")


def test_versions_follow_a_moved_alias(served_hub: Hub, serve: Serve) -> None:
    server = serve(["acme/intent@production"], poll_aliases_s=0.1)
    client = _client(server)
    name = "acme/intent@production"
    assert (
        client.infer(name, [_text_input(TEXTS, True)], model_version="1").get_response()["model_version"]
        == "1"
    )
    served_hub.tag("acme/intent:2", "production")
    deadline = time.monotonic() + 30
    while client.get_model_metadata(name)["versions"] != ["2"]:
        assert time.monotonic() < deadline, "the alias was not followed"
        time.sleep(0.05)
    with pytest.raises(InferenceServerException, match="version '1' is not served here; it serves version 2"):
        client.infer(name, [_text_input(TEXTS, True)], model_version="1")
    assert not client.is_model_ready(name, model_version="1") and client.is_model_ready(
        name, model_version="2"
    )
    assert (
        client.infer(name, [_text_input(TEXTS, True)], model_version="2").get_response()["model_version"]
        == "2"
    )
    assert client.get_model_config(name, model_version="2")["parameters"]["hub_version"] == {
        "string_value": "acme/intent:2"
    }


def test_the_asyncio_tritonclient_too(serve: Serve) -> None:
    pytest.importorskip("aiohttp")  # tritonclient.http.aio's transport; datasets brings it
    import tritonclient.http.aio as aio_triton

    server = serve(["acme/intent-onnx"])
    expected = _json_answer(server, "acme/intent-onnx", TEXTS)

    async def scenario() -> tuple[bool, Any, Any]:
        client = aio_triton.InferenceServerClient(urlsplit(server.url).netloc)
        try:
            text = aio_triton.InferInput("text", [len(TEXTS)], "BYTES")
            text.set_data_from_numpy(np.array(TEXTS, dtype=object))
            result = await client.infer("acme/intent-onnx", [text], model_version="1")
            return await client.is_server_ready(), result.as_numpy("label"), result.as_numpy("scores")
        finally:
            await client.close()

    ready, labels, scores = asyncio.run(scenario())
    assert ready and labels is not None and scores is not None
    assert [x.decode() for x in labels] == expected["label"]
    np.testing.assert_array_equal(np.ravel(scores), np.array(expected["scores"], dtype=np.float32))


def test_infer_truncates_when_the_request_parameter_asks_like_the_openai_routes(serve: Serve) -> None:
    """``"parameters": {"truncate": true}`` cuts what is too long (tokens, then characters) as the
    OpenAI routes' ``"truncate": true`` does, with the same answer; without it the text is refused,
    the message naming the parameter."""
    server = serve(["acme/intent"], max_input_chars=1000)
    over_tokens = " ".join(f"w{i % 7}" for i in range(100))  # over the tiny model's 64 tokens
    over_chars = "refund " * 200  # 1400 characters

    def infer(text: str, **parameters: object) -> httpx.Response:
        body: dict[str, Any] = {
            "inputs": [{"name": "text", "shape": [1], "datatype": "BYTES", "data": [text]}]
        }
        if parameters:
            body["parameters"] = parameters
        return httpx.post(f"{server.url}/v2/models/acme/intent/infer", json=body)

    for text, status in ((over_tokens, 422), (over_chars, 413)):
        refused = infer(text)
        assert refused.status_code == status, refused.text
        assert '"parameters": {"truncate": true}' in refused.json()["error"]
        cut = infer(text, truncate=True)
        assert cut.status_code == 200, cut.text
        openai = httpx.post(
            f"{server.url}/v1/classify", json={"model": "acme/intent", "input": text, "truncate": True}
        ).json()["data"][0]
        scores = dict(
            zip(LABELS, {o["name"]: o["data"] for o in cut.json()["outputs"]}["scores"], strict=True)
        )
        assert scores == pytest.approx(openai["scores"], abs=1e-6)
    assert infer(over_tokens, truncate=False).status_code == 422
    wrong = infer(over_tokens, truncate="yes")
    assert wrong.status_code == 422 and "parameters.truncate must be true or false" in wrong.json()["error"]
    # tritonclient sends request parameters as they are
    answer = _client(server).infer(
        "acme/intent", [_text_input([over_tokens], True)], parameters={"truncate": True}
    )
    assert answer.as_numpy("scores").shape == (1, len(LABELS))
