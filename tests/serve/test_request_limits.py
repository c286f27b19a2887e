"""``serve.request_limits`` and the JSON check of ``serve.payloads`` over real sockets: bodies bounded
in size whatever their framing and in the time they take to arrive, a client hanging up mid-upload,
bodies a browser could send on a web page's behalf, and ``--allowed-hosts``."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Callable

import httpx
import pytest

from fmstack.serve import RunningServer
from fmstack.serve.request_limits import host_allowed
from tests.serve.test_app import _metric

Serve = Callable[..., RunningServer]
BODY = json.dumps({"model": "acme/intent", "input": "hello"}).encode()


def _connect(server: RunningServer) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=10)
    return sock


def _response(sock: socket.socket) -> tuple[int, dict[str, str], bytes]:
    """Status, headers and whatever body arrives until the server closes the connection."""
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    headers = dict(line.lower().split(": ", 1) for line in lines[1:])
    return int(lines[0].split()[1]), headers, body


def test_a_chunked_body_over_the_limit_is_refused_while_it_arrives(serve: Serve) -> None:
    server = serve(["acme/intent"], max_body_bytes=4096)
    with _connect(server) as sock:
        sock.sendall(
            b"POST /v1/classify HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n"
        )
        # 6 KB in chunks of 1 KB and no last chunk: a server that reads the whole body before
        # checking its size waits for more (and this test times out); the limit answers at 4 KB.
        sock.sendall((b"400\r\n" + b"x" * 1024 + b"\r\n") * 6)
        status, headers, body = _response(sock)
    assert status == 413 and headers["connection"] == "close"
    assert "over the limit of 4096 bytes (--max-body-bytes)" in json.loads(body)["error"]["message"]


def test_a_body_that_does_not_arrive_in_time_is_408(serve: Serve) -> None:
    server = serve(["acme/intent"], body_timeout_s=0.5)
    with _connect(server) as sock:
        start = time.monotonic()
        sock.sendall(
            b"POST /v1/classify HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: 7000\r\n\r\n" + BODY[:20]
        )
        status, headers, body = _response(sock)
        waited = time.monotonic() - start
    assert status == 408 and headers["connection"] == "close"
    assert "did not arrive within 0.5 s (--body-timeout)" in json.loads(body)["error"]["message"]
    assert waited < 5


def test_a_client_hanging_up_mid_upload_is_a_499_not_a_500(serve: Serve) -> None:
    server = serve(["acme/intent"])
    with _connect(server) as sock:
        sock.sendall(
            b"POST /v1/classify HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: 5000\r\n\r\n" + BODY[:20]
        )
        time.sleep(0.2)
    with httpx.Client(base_url=server.url) as client:
        for _ in range(50):
            if _metric(client, "fmstack_serve_requests_total", endpoint="/v1/classify"):
                break
            time.sleep(0.05)
        assert _metric(client, "fmstack_serve_requests_total", endpoint="/v1/classify", status="499") == 1
        assert _metric(client, "fmstack_serve_requests_total", status="500") == 0


@pytest.mark.parametrize(
    ("path", "headers", "status"),
    [
        ("/v1/classify", {}, 415),  # a fetch() of a Blob sends no Content-Type
        ("/v1/classify", {"content-type": "text/plain"}, 415),
        ("/v1/classify", {"content-type": "text/plain; note=json"}, 415),
        ("/v1/classify", {"content-type": "application/x-www-form-urlencoded"}, 415),
        ("/v1/classify", {"content-type": "multipart/form-data; boundary=x"}, 415),
        ("/v1/classify", {"content-type": "application/json; charset=utf-8"}, 200),
        ("/v1/classify", {"content-type": "Application/JSON"}, 200),
        ("/v1/classify", {"content-type": "application/vnd.api+json"}, 200),
        ("/v2/models/acme/intent/infer", {}, 200),  # tritonclient sends none
        ("/v2/models/acme/intent/infer", {"origin": "https://evil.example"}, 415),
        ("/v2/models/acme/intent/infer", {"sec-fetch-site": "cross-site"}, 415),
        ("/v2/models/acme/intent/infer", {"content-type": "text/plain"}, 415),
    ],
)
def test_only_bodies_declared_as_json_are_read(
    serve: Serve, path: str, headers: dict[str, str], status: int
) -> None:
    server = serve(["acme/intent"])
    body = BODY
    if path.startswith("/v2"):
        body = json.dumps(
            {"inputs": [{"name": "t", "shape": [1], "datatype": "BYTES", "data": ["hi"]}]}
        ).encode()
    with httpx.Client(base_url=server.url) as client:
        r = client.post(path, content=body, headers=headers)
    assert r.status_code == status, r.text
    if status == 415:
        message = r.json()["error"] if path.startswith("/v2") else r.json()["error"]["message"]
        assert "Content-Type: application/json" in message


def test_allowed_hosts_refuse_other_host_headers_but_not_probes(serve: Serve) -> None:
    server = serve(["acme/intent"], allowed_hosts=["localhost", "*.example.com"])
    with httpx.Client(base_url=server.url) as client:

        def post(host: str) -> httpx.Response:
            return client.post(
                "/v1/classify", content=BODY, headers={"host": host, "content-type": "application/json"}
            )

        refused = post("rebound.attacker.test")
        assert refused.status_code == 421
        assert refused.json()["error"]["message"] == (
            "this server does not answer for host 'rebound.attacker.test' (--allowed-hosts)"
        )
        assert post("example.com").status_code == 421
        assert post(f"localhost:{server.port}").status_code == 200
        assert post("api.example.com").status_code == 200
        assert client.get("/v1/models", headers={"host": "evil.test"}).status_code == 421
        assert client.get("/readyz", headers={"host": "10.0.0.7:8000"}).status_code == 200


@pytest.mark.parametrize(
    ("host", "allowed"),
    [
        ("localhost", True),
        ("LOCALHOST:8000", True),
        ("[::1]:8000", True),
        ("a.b.example.com", True),
        ("example.com", False),
        ("badexample.com", False),
        ("", False),
        ("127.0.0.2", False),
    ],
)
def test_host_allowed(host: str, allowed: bool) -> None:
    assert host_allowed(host, ("localhost", "[::1]", "*.example.com", "127.0.0.1")) is allowed
