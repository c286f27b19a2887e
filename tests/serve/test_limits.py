"""What one request may cost the server: texts bounded by characters before tokenising (or cut, when
the request says ``truncate``), tokenisation kept off the event loop, and bodies bounded in size and
in the time they take to arrive, whatever their framing."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable

import httpx
import numpy as np
import psutil
import pytest

from fmstack.serve import RunningServer

Serve = Callable[..., RunningServer]


def _post(client: httpx.Client, path: str, body: object) -> httpx.Response:
    return client.post(path, json=body)


def test_a_text_over_max_input_chars_is_refused_or_cut_as_asked(serve: Serve) -> None:
    server = serve(["acme/embed", "acme/intent"], max_input_chars=1000)
    long = "refund " * 200  # 1400 characters
    with httpx.Client(base_url=server.url) as client:
        refused = _post(client, "/v1/embeddings", {"model": "acme/embed", "input": ["ok", long]})
        assert refused.status_code == 413, refused.text
        message = refused.json()["error"]["message"]
        assert "input 1 has 1400 characters; the limit is 1000 (--max-input-chars)" in message
        assert '"truncate": true' in message
        cut = _post(client, "/v1/classify", {"model": "acme/intent", "input": long, "truncate": True})
        assert cut.status_code == 200, cut.text
        assert cut.json()["usage"]["prompt_tokens"] == 64  # the tiny models' max_length


def test_truncate_keeps_the_first_tokens_and_the_closing_special_token(serve: Serve) -> None:
    server = serve(["acme/embed"])
    words = [f"w{i % 7}" for i in range(100)]
    with httpx.Client(base_url=server.url) as client:
        too_long = _post(client, "/v1/embeddings", {"model": "acme/embed", "input": " ".join(words)})
        assert too_long.status_code == 422 and '"truncate": true' in too_long.json()["error"]["message"]
        cut = _post(
            client, "/v1/embeddings", {"model": "acme/embed", "input": " ".join(words), "truncate": True}
        ).json()
        assert cut["usage"]["prompt_tokens"] == 64
        # "w0" is two tokens (w, ##0): [CLS] + 31 words + [SEP] is exactly what the cut text holds.
        head = _post(client, "/v1/embeddings", {"model": "acme/embed", "input": " ".join(words[:31])}).json()
        assert head["usage"]["prompt_tokens"] == 64
        np.testing.assert_allclose(cut["data"][0]["embedding"], head["data"][0]["embedding"], atol=1e-6)


@pytest.mark.parametrize("text", ["\u200b", "\u200b\u200d\ufeff", " \u2060\u00ad ", "\x00\x01", "\u3164"])
def test_a_text_of_invisible_characters_is_blank(serve: Serve, text: str) -> None:
    server = serve(["acme/intent"])
    with httpx.Client(base_url=server.url) as client:
        r = _post(client, "/v1/classify", {"model": "acme/intent", "input": ["fine", text]})
        assert r.status_code == 422, r.text
        assert "input 1 is empty or only whitespace or invisible characters" in r.json()["error"]["message"]
        ok = _post(client, "/v1/classify", {"model": "acme/intent", "input": "\u200bhello\u200d"})
        assert ok.status_code == 200


def test_many_long_texts_are_tokenised_in_a_thread_and_refused_at_the_first_too_long(serve: Serve) -> None:
    server = serve(["acme/intent"], max_input_chars=50_000)
    texts = ["short text"] * 10 + ["word " * 9000] * 100  # 4.5 MB, every long one over 64 tokens
    with httpx.Client(base_url=server.url, timeout=60) as client:
        start = time.perf_counter()
        r = _post(client, "/v1/classify", {"model": "acme/intent", "input": texts})
        assert r.status_code == 422 and "input 10 has" in r.json()["error"]["message"], r.text
        refused_in = time.perf_counter() - start
        cut = _post(client, "/v1/classify", {"model": "acme/intent", "input": texts[:14], "truncate": True})
        assert cut.status_code == 200, cut.text
        assert [len(d["scores"]) for d in cut.json()["data"]] == [3] * 14
    assert refused_in < 5  # one chunk tokenised, not 100 texts of 9000 words


async def _healthz_while(url: str, bodies: list[bytes]) -> tuple[list[int], float]:
    """Statuses of ``bodies`` posted at once, and the slowest /healthz answer meanwhile."""
    async with httpx.AsyncClient(base_url=url, timeout=120) as client:
        headers = {"content-type": "application/json"}
        posts = [asyncio.create_task(client.post("/v1/classify", content=b, headers=headers)) for b in bodies]
        slowest = 0.0
        while not all(p.done() for p in posts):
            start = time.perf_counter()
            assert (await client.get("/healthz")).status_code == 200
            slowest = max(slowest, time.perf_counter() - start)
            await asyncio.sleep(0.02)
        return [(await p).status_code for p in posts], slowest


@pytest.mark.slow
def test_huge_texts_neither_stall_the_server_nor_keep_its_memory(serve: Serve) -> None:
    """A 7.8 MB text was tokenised in full on the event loop: /healthz stalled for 10-30 s and the
    process grew by 1.5 GB, for good. Now it is refused (or cut) by characters before any tokenising,
    and long texts are tokenised in a thread, chunk by chunk."""
    server = serve(["acme/intent"], max_input_chars=20_000)
    process = psutil.Process()  # the server runs in a thread of this process
    with httpx.Client(base_url=server.url) as client:  # warm up: the first requests allocate for good
        for _ in range(3):
            assert _post(client, "/v1/classify", {"model": "acme/intent", "input": "hi"}).status_code == 200
    huge = "refund " * 1_100_000  # 7.7 MB
    baseline = process.memory_info().rss
    bodies = [
        {"model": "acme/intent", "input": huge},
        {"model": "acme/intent", "input": huge, "truncate": True},
        {"model": "acme/intent", "input": [huge[:19_999]] * 390},
        {"model": "acme/intent", "input": [huge[:200_000]] * 38, "truncate": True},
    ]
    statuses, slowest = asyncio.run(_healthz_while(server.url, [json.dumps(b).encode() for b in bodies]))
    assert statuses == [413, 200, 422, 200]
    assert slowest < 1.0, f"/healthz took {slowest:.2f} s during the requests"
    grown = (process.memory_info().rss - baseline) / 2**20
    assert grown < 150, f"the server grew by {grown:.0f} MiB and kept it"
