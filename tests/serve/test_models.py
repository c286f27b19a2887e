"""Hot swap under real HTTP load: when a served alias moves, the new version takes over with zero
failed requests; a pinned version never moves."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import httpx

from fmstack.hub import Hub
from fmstack.serve import RunningServer


async def _load(url: str, model: str, stop: asyncio.Event, clients: int) -> list[tuple[int, str]]:
    """``clients`` concurrent clients posting as fast as answers come: (status, version) of each."""
    results: list[tuple[int, str]] = []

    async def client_loop(client: httpx.AsyncClient, i: int) -> None:
        while not stop.is_set():
            r = await client.post(
                "/v1/classify", json={"model": model, "input": [f"text {i}", "another one"]}
            )
            results.append((r.status_code, r.json().get("version", r.text)))

    limits = httpx.Limits(max_connections=clients)
    async with httpx.AsyncClient(base_url=url, timeout=30, limits=limits) as client:
        await asyncio.gather(*(client_loop(client, i) for i in range(clients)))
    return results


def test_moving_an_alias_swaps_versions_with_zero_failed_requests(
    served_hub: Hub, serve: Callable[..., RunningServer]
) -> None:
    server = serve(["acme/intent@production", "acme/intent:1"], poll_aliases_s=0.2)

    async def scenario() -> list[tuple[int, str]]:
        stop = asyncio.Event()
        load = asyncio.create_task(_load(server.url, "acme/intent@production", stop, clients=8))
        await asyncio.sleep(1.0)
        await asyncio.to_thread(served_hub.tag, "acme/intent:2", "production")
        swapped_at = time.monotonic()
        async with httpx.AsyncClient(base_url=server.url) as probe:
            while time.monotonic() - swapped_at < 20:
                models = (await probe.get("/v1/models")).json()["data"]
                if {m["id"]: m["version"] for m in models}["acme/intent@production"] == "acme/intent:2":
                    break
                await asyncio.sleep(0.05)
        await asyncio.sleep(1.0)  # keep the load on after the switch
        stop.set()
        return await load

    results = asyncio.run(scenario())
    failed = [r for r in results if r[0] != 200]
    assert failed == [], failed[:5]
    versions = [v for _, v in results]
    assert versions.count("acme/intent:1") > 5 and versions.count("acme/intent:2") > 5
    assert versions[-1] == "acme/intent:2"
    with httpx.Client(base_url=server.url) as client:
        pinned = client.post("/v1/classify", json={"model": "acme/intent:1", "input": "x"}).json()
        assert pinned["version"] == "acme/intent:1"
        metrics = client.get("/metrics").text
        assert 'fmstack_serve_model_version{model="acme/intent@production"} 2.0' in metrics


def test_a_latest_ref_follows_new_pushes(
    served_hub: Hub, serve: Callable[..., RunningServer], model_dirs: dict[str, object]
) -> None:
    server = serve(["acme/embed"], poll_aliases_s=0.1)
    with httpx.Client(base_url=server.url) as client:
        before = client.post("/v1/embeddings", json={"model": "acme/embed", "input": "x"}).json()
        served_hub.push("acme/embed", model_dirs["encoder-onnx"], "model")  # type: ignore[arg-type]
        for _ in range(200):
            if client.get("/v1/models").json()["data"][0]["version"] == "acme/embed:2":
                break
            time.sleep(0.05)
        listed = client.get("/v1/models").json()["data"][0]
        assert (listed["version"], listed["platform"]) == ("acme/embed:2", "onnxruntime")
        after = client.post("/v1/embeddings", json={"model": "acme/embed", "input": "x"}).json()
        assert after["usage"] == before["usage"]
