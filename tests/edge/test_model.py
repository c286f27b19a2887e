"""The device runtime answers exactly what ``fmstack serve`` answers: ``Model`` against the server's ONNX
runtime on the same versions, and ``fmstack-edge serve``'s HTTP answers against ``fmstack serve``'s."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest

from fmstack.hub import Hub
from fmstack.servable import read_descriptor
from fmstack.serve import ServeSettings, start_server
from fmstack.serve.runtimes.onnx import load
from fmstack.settings import Settings

TEXTS = ["ball goal team", "bread", "the bank of the loan and cash price very very", "a"]


def _server_outputs(folder: Path, texts: list[str]) -> np.ndarray:  # type: ignore[type-arg]
    runtime = load(folder, read_descriptor(folder), threads=1)
    return runtime.forward(runtime.encode(texts))


@pytest.mark.parametrize("name", ["cls", "enc"])
def test_model_equals_the_servers_onnx_runtime(versions: dict[str, Path], name: str) -> None:
    from fmstack_edge import Model

    model = Model(versions[name], threads=1)
    expected = _server_outputs(versions[name], TEXTS)
    assert np.array_equal(model.outputs(TEXTS), expected)  # batched with padding, bit for bit
    if name == "cls":
        labels = [p.label for p in model.predict(TEXTS)]
        assert labels == [model.labels[i] for i in expected.argmax(axis=1)]
    else:
        assert model.embed(TEXTS).shape == expected.shape


def test_model_refuses_what_it_cannot_answer(versions: dict[str, Path], tmp_path: Path) -> None:
    from fmstack_edge import BadBundle, BadInput, Model

    model = Model(versions["cls"], threads=1)
    with pytest.raises(BadInput, match="embed"):
        model.embed(["x"])
    with pytest.raises(BadInput, match="at most 32"):
        model.predict(["ball " * 40])
    assert len(model.encode(["ball " * 40], truncate=True)[0]) == 32
    with pytest.raises(BadBundle, match="no fmstack.json"):
        Model(tmp_path)


@pytest.fixture
def both(versions: dict[str, Path], tmp_path: Path) -> Iterator[tuple[str, str, str]]:
    """(fmstack serve URL, fmstack-edge serve URL for cls, for enc) on the same two versions."""
    from fmstack_edge import Model
    from fmstack_edge.server import Current, Served, start

    with Hub(Settings.at(tmp_path / "home")) as hub:
        hub.push("acme/cls", versions["cls"], "model")
        hub.push("acme/enc", versions["enc"], "model")
        settings = ServeSettings(models=["acme/cls:1", "acme/enc:1"], port=0, threads=1)
        server = start_server(settings, hub.settings)
    edges = [
        start(Served(Current(Model(versions[n], threads=1), f"acme/{n}:1", f"acme/{n}:1")), "127.0.0.1", 0)
        for n in ("cls", "enc")
    ]
    try:
        yield server.url, *(f"http://127.0.0.1:{e.server_address[1]}" for e in edges)  # type: ignore[misc]
    finally:
        server.stop()
        for e in edges:
            e.shutdown()
            e.server_close()


def _scores(answer: dict) -> list[list[float]]:  # type: ignore[type-arg]
    return [list(d["scores"].values()) for d in answer["data"]]


def test_http_answers_equal_fmstack_serve(both: tuple[str, str, str]) -> None:
    serve, edge_cls, edge_enc = both
    body = {"model": "acme/cls:1", "input": TEXTS}
    want, got = (
        httpx.post(f"{serve}/v1/classify", json=body).json(),
        httpx.post(f"{edge_cls}/v1/classify", json=body).json(),
    )
    # The server batches requests by length, so a text may be padded differently than here: the same
    # math, summed in another order (float rounding, ~1e-7).
    assert [d["label"] for d in got["data"]] == [d["label"] for d in want["data"]]
    assert np.allclose(_scores(got), _scores(want), atol=1e-6, rtol=0)
    assert (
        got["usage"] == want["usage"] and got["model"] == want["model"] and got["version"] == want["version"]
    )
    body = {"model": "acme/enc:1", "input": TEXTS}
    want = httpx.post(f"{serve}/v1/embeddings", json=body).json()
    got = httpx.post(f"{edge_enc}/v1/embeddings", json=body).json()
    vectors = [[d["embedding"] for d in answer["data"]] for answer in (got, want)]
    assert np.allclose(vectors[0], vectors[1], atol=1e-6, rtol=0)
    assert got["usage"] == want["usage"] and set(got) == set(want)
    # Bad input: a 4xx in the OpenAI error shape, as fmstack serve answers it.
    for url, payload, status in [
        (edge_cls, {"model": "acme/cls:1", "input": []}, 422),
        (edge_cls, {"model": "nope", "input": "x"}, 404),
        (edge_enc, {"model": "acme/enc:1", "input": "x", "dimensions": 3}, 422),
        (edge_cls, {"model": "acme/cls:1", "input": "ball " * 40}, 422),
    ]:
        answer = httpx.post(f"{url}/v1/classify" if url == edge_cls else f"{url}/v1/embeddings", json=payload)
        assert answer.status_code == status and answer.json()["error"]["message"], answer.text
    broken = httpx.post(
        f"{edge_cls}/v1/classify", content=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert broken.status_code == 422
    huge = httpx.post(f"{edge_cls}/v1/classify", content=b"x" * 2_000_000)
    assert huge.status_code == 413


def test_an_optimized_graph_is_saved_reused_and_rebuilt_when_broken(
    versions: dict[str, Path], tmp_path: Path
) -> None:
    from fmstack_edge import Model

    optimized = tmp_path / ".optimized.onnx"
    first = Model(versions["cls"], threads=1, optimized=optimized)
    assert optimized.is_file() and not list(tmp_path.glob(".optimized.onnx.*"))
    again = Model(versions["cls"], threads=1, optimized=optimized)  # loaded without an optimisation pass
    assert np.array_equal(again.outputs(TEXTS), first.outputs(TEXTS))
    optimized.write_bytes(b"cut short")
    rebuilt = Model(versions["cls"], threads=1, optimized=optimized)
    assert np.array_equal(rebuilt.outputs(TEXTS), first.outputs(TEXTS)) and optimized.stat().st_size > 9
