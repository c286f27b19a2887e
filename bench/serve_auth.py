"""What an API key costs a request: ``serve.auth.ApiKeys`` in front of an ASGI app that answers at once.

    .venv/bin/python bench/serve_auth.py                # --keys 10 --requests 20000 --repeats 5; ~10 s

Each request is one ASGI call (no sockets), so what is measured is the event loop's time per request
in the middleware: finding the bearer header, hashing the key, comparing it with every key's digest
(``hmac.compare_digest``), and looking at the key file. Baseline in the same run: the app without the
middleware. Variants: the key file looked at once a second (what the server does) and on every
request (``recheck_s=0``: one ``stat`` per request). Reports the median of ``--repeats`` rounds, in
microseconds per request, and the load average, since the machine is shared.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import tempfile
import time
from pathlib import Path

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from fmstack.errors import Unauthorized
from fmstack.serve.auth import ApiKeys, KeyFile


async def _plain(scope: Scope, receive: Receive, send: Send) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"ok"})


async def _refuse(request: Request, exc: Unauthorized) -> Response:
    raise AssertionError(f"the benchmark key was refused: {exc}")


async def _per_request_us(app: ASGIApp, key: str, requests: int) -> float:
    scope: Scope = {
        "type": "http",
        "method": "POST",
        "path": "/v1/embeddings",
        "headers": [
            (b"host", b"127.0.0.1:8000"),
            (b"content-type", b"application/json"),
            (b"authorization", f"Bearer {key}".encode()),
        ],
    }

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Message) -> None:
        return None

    start = time.perf_counter()
    for _ in range(requests):
        await app(scope, receive, send)
    return (time.perf_counter() - start) / requests * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--keys", type=int, default=10, help="keys in the file")
    parser.add_argument("--requests", type=int, default=20000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "keys.txt"
        keys = [f"sk-bench-{i:04d}-{os.urandom(12).hex()}" for i in range(args.keys)]
        path.write_text("".join(k + "\n" for k in keys))
        path.chmod(0o600)
        key = keys[len(keys) // 2]
        apps: dict[str, ASGIApp] = {
            "no API keys (baseline)": _plain,
            "API keys, file looked at once a second": ApiKeys(_plain, [KeyFile.open(path)], _refuse),
            "API keys, file looked at every request": ApiKeys(
                _plain,
                [KeyFile.open(path, recheck_s=0)],
                _refuse,
            ),
        }
        rounds: dict[str, list[float]] = {name: [] for name in apps}
        for _ in range(args.repeats):  # alternate, so that every variant sees the same drift in load
            for name, app in apps.items():
                rounds[name].append(asyncio.run(_per_request_us(app, key, args.requests)))
    base = statistics.median(rounds["no API keys (baseline)"])
    print(
        f"{args.keys} keys, {args.requests} requests x {args.repeats} rounds, load average {os.getloadavg()}"
    )
    print(f"{'variant':42} {'us/request':>10} {'added us':>9}")
    for name, values in rounds.items():
        median = statistics.median(values)
        print(f"{name:42} {median:10.2f} {median - base:9.2f}")


if __name__ == "__main__":
    main()
