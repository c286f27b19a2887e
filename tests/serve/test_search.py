"""``/v1/search`` and ``/v1/classify``'s fallback through the real app over sockets: a search version
(tiny ONNX encoder + faiss index of its own vectors) and a classifier whose fmstack.json carries a
fallback threshold."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import httpx
import numpy as np
import pyarrow as pa
import pytest

from fmstack.hub import Hub
from fmstack.serve import RunningServer
from fmstack.serve.loader import load_runtime
from fmstack.serve.schemas import ClassifyResponse, SearchResponse
from fmstack.serve.vector_index import write_index

Serve = Callable[..., RunningServer]
ITEMS = [
    ("a1", "my card was stolen yesterday", "cards"),
    ("a2", "how do I freeze my card", "cards"),
    ("b1", "what is the exchange rate for yen", "fx"),
    ("b2", "fees for paying abroad in dollars", "fx"),
    ("c1", "the transfer to my brother failed", "transfers"),
]


@pytest.fixture
def search_hub(served_hub: Hub, tmp_path: Path) -> Hub:
    """acme/catalog: acme/embed-onnx's files plus a search/ index of ITEMS made by that model;
    acme/intent-strict: the ONNX classifier with a fallback threshold no random model reaches."""
    folder = tmp_path / "catalog"
    shutil.copytree(served_hub.checkout("acme/embed-onnx"), folder)
    folder.chmod(0o755)
    _, runtime = load_runtime(served_hub, "acme/embed-onnx", 1)
    vectors = runtime.forward(runtime.encode([text for _, text, _ in ITEMS]))
    runtime.close()
    items = pa.table({k: [row[i] for row in ITEMS] for i, k in enumerate(("id", "text", "topic"))})
    write_index(folder, vectors, items, "flat")
    served_hub.push("acme/catalog", folder, "model")
    strict = tmp_path / "strict"
    shutil.copytree(served_hub.checkout("acme/intent-onnx"), strict)
    strict.chmod(0o755)
    descriptor = json.loads((strict / "fmstack.json").read_text())
    (strict / "fmstack.json").chmod(0o644)
    (strict / "fmstack.json").write_text(json.dumps({**descriptor, "fallback_threshold": 0.99}))
    served_hub.push("acme/intent-strict", strict, "model")
    return served_hub


def test_search_top_k_filters_and_refusals(search_hub: Hub, serve: Serve) -> None:
    server = serve(["acme/catalog", "acme/embed"])
    with httpx.Client(base_url=server.url, timeout=30) as client:
        reply = client.post(
            "/v1/search", json={"model": "acme/catalog", "query": [ITEMS[2][1], "card"], "top_k": 3}
        )
        assert reply.status_code == 200, reply.text
        body = SearchResponse.model_validate(reply.json())
        assert body.version == "acme/catalog:1" and [len(r.hits) for r in body.data] == [3, 3]
        best = body.data[0].hits[0]  # an item's own text finds it first, at cosine ~1
        assert (best.id, best.metadata) == ("b1", {"topic": "fx"}) and best.score == pytest.approx(
            1.0, abs=1e-3
        )
        assert [h.score for h in body.data[1].hits] == sorted(
            (h.score for h in body.data[1].hits), reverse=True
        )

        only = {
            "model": "acme/catalog",
            "query": ITEMS[2][1],
            "top_k": 10,
            "filter": {"topic": ["cards", "transfers"]},
        }
        hits = client.post("/v1/search", json=only).json()["data"][0]["hits"]
        assert sorted(h["id"] for h in hits) == ["a1", "a2", "c1"]  # all that match, not k minus the rest

        unknown = client.post("/v1/search", json={**only, "filter": {"colour": "red"}})
        assert unknown.status_code == 422 and "topic" in unknown.json()["error"]["message"]
        no_index = client.post("/v1/search", json={"model": "acme/embed", "query": "x"})
        assert no_index.status_code == 400 and "no search index" in no_index.json()["error"]["message"]
        too_many = client.post("/v1/search", json={**only, "top_k": 5000})
        assert too_many.status_code == 422


def test_classify_fallback_from_the_version_and_the_serve_flag(search_hub: Hub, serve: Serve) -> None:
    texts = {"input": ["refund my order please", "hello"]}
    server = serve(["acme/intent-strict", "acme/intent"])
    with httpx.Client(base_url=server.url, timeout=30) as client:
        strict = ClassifyResponse.model_validate(
            client.post("/v1/classify", json={"model": "acme/intent-strict", **texts}).json()
        )
        plain = ClassifyResponse.model_validate(
            client.post("/v1/classify", json={"model": "acme/intent", **texts}).json()
        )
    assert [d.fallback for d in strict.data] == [True, True]  # no 3-label random model scores 0.99
    assert [d.fallback for d in plain.data] == [False, False]  # no threshold: never
    overridden = serve(["acme/intent-strict"], fallback_threshold=0.0)
    with httpx.Client(base_url=overridden.url, timeout=30) as client:
        reply = client.post("/v1/classify", json={"model": "acme/intent-strict", **texts}).json()
    assert [d["fallback"] for d in reply["data"]] == [False, False]


@pytest.mark.parametrize("kind", ["flat", "hnsw"])
def test_vector_index_filters_inside_the_search(kind: str, tmp_path: Path) -> None:
    from fmstack.errors import InvalidInput
    from fmstack.serve.vector_index import SEARCH_DIR, VectorIndex

    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(200, 8)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    items = pa.table(
        {
            "id": [f"i{i}" for i in range(200)],
            "text": [str(i) for i in range(200)],
            "shard": [i % 50 for i in range(200)],
        }
    )
    write_index(tmp_path, vectors, items, kind)
    index = VectorIndex(tmp_path / SEARCH_DIR)
    [hits] = index.search(vectors[:1], 5)
    assert hits[0].id == "i0" and hits[0].score == pytest.approx(1.0, abs=1e-5)
    [rare] = index.search(vectors[:1], 10, {"shard": 7})  # 4 of 200 items match: all 4 come back
    assert sorted(h.id for h in rare) == ["i107", "i157", "i57", "i7"]
    with pytest.raises(InvalidInput, match="cannot be compared with the column's int64"):
        index.search(vectors[:1], 3, {"shard": "seven"})
