"""API keys (``--api-key-file``): the key file's rules, and a running server with the clients users bring
(httpx, openai, tritonclient) sending or not sending ``Authorization: Bearer``."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import numpy as np
import openai
import pytest
import tritonclient.http as triton
from tritonclient.utils import InferenceServerException

from fmstack.cli.main import main
from fmstack.errors import InvalidInput
from fmstack.hub import Hub
from fmstack.serve import RunningServer
from fmstack.serve.auth import RECHECK_S, KeyFile, bearer_key, parse_keys
from tests.serve.test_app import _metric

Serve = Callable[..., RunningServer]
KEY = "sk-fmstack-first-key"
HASHED_KEY = "sk-fmstack-hashed-key"


def _key_file(tmp_path: Path, *lines: str) -> Path:
    path = tmp_path / "keys.txt"
    path.write_text("".join(line + "\n" for line in lines))
    path.chmod(0o600)
    return path


def _sha(key: str) -> str:
    return "sha256:" + hashlib.sha256(key.encode()).hexdigest()


def _accepts(keys: KeyFile, key: str) -> bool:
    return asyncio.run(keys.check(key))


def test_key_lines_plain_hashed_comments_and_mistakes() -> None:
    text = f"# team keys\n\n  {KEY}  \n{_sha(HASHED_KEY).upper().replace('SHA256:', 'sha256:')}\nsha256:abc\n"
    digests, problems = parse_keys(text)
    assert digests == [hashlib.sha256(KEY.encode()).digest(), hashlib.sha256(HASHED_KEY.encode()).digest()]
    assert problems == ["line 5: 'sha256:' must be followed by 64 hex digits"]
    headers = [(b"host", b"x"), (b"authorization", b"bearer  k1 ")]
    assert bearer_key(headers) == "k1"
    assert bearer_key([(b"authorization", b"Basic dTpw")]) is None
    assert bearer_key([(b"authorization", b"Bearer ")]) is None


def test_a_key_file_that_cannot_be_used_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="cannot read --api-key-file .*missing.txt: No such file"):
        KeyFile.open(tmp_path / "missing.txt")
    with pytest.raises(InvalidInput, match="holds no keys: write one per line"):
        KeyFile.open(_key_file(tmp_path, "# nothing yet", ""))
    with pytest.raises(InvalidInput, match="line 2: 'sha256:' must be followed by 64 hex digits"):
        KeyFile.open(_key_file(tmp_path, KEY, "sha256:xyz"))


def test_keys_rotate_when_the_file_changes(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = _key_file(tmp_path, KEY, _sha(HASHED_KEY))
    keys = KeyFile.open(path, recheck_s=0)  # look at the file on every check
    assert _accepts(keys, KEY) and _accepts(keys, HASHED_KEY)
    assert not _accepts(keys, "sk-guess") and not _accepts(keys, _sha(HASHED_KEY))  # the digest is no key
    replacement = tmp_path / "new.txt"
    replacement.write_text("sk-second-key\n")
    os.replace(replacement, path)  # the atomic way to rotate: same size or not, a new inode
    assert _accepts(keys, "sk-second-key") and not _accepts(keys, KEY)
    with caplog.at_level(logging.INFO, logger="fmstack.serve"):
        path.write_text("")  # emptied: nothing is accepted any more
        assert not _accepts(keys, "sk-second-key")
        path.unlink()
        assert not _accepts(keys, "sk-second-key")
        path.write_text(f"{KEY}\n")
        assert _accepts(keys, KEY)
    assert "holds no keys now" in caplog.text and "No such file" in caplog.text
    patient = KeyFile.open(path)  # by default the file is looked at once a second, not per request
    path.write_text("sk-third-key\n")
    assert _accepts(patient, KEY) and not _accepts(patient, "sk-third-key")
    assert KEY not in caplog.text and "sk-second-key" not in caplog.text


def test_a_keyed_server_refuses_without_a_valid_key_and_keeps_probes_open(
    serve: Serve, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = _key_file(tmp_path, KEY, _sha(HASHED_KEY))
    server = serve(["acme/intent-onnx"], api_key_file=path)
    body = {"model": "acme/intent-onnx", "input": ["hi"]}
    infer = {"inputs": [{"name": "text", "shape": [1], "datatype": "BYTES", "data": ["hi"]}]}
    with httpx.Client(base_url=server.url) as client, caplog.at_level(logging.DEBUG):
        for open_path in ("/healthz", "/readyz", "/metrics", "/v2/health/live", "/v2/health/ready", "/docs"):
            assert client.get(open_path).status_code == 200, open_path
        missing = client.post("/v1/classify", json=body)
        assert missing.status_code == 401 and missing.headers["www-authenticate"].startswith("Bearer")
        assert missing.json()["error"]["message"].startswith("this server needs an API key")
        assert missing.json()["error"]["code"] == "401"
        wrong = client.post("/v1/classify", json=body, headers={"Authorization": "Bearer sk-guess"})
        assert wrong.status_code == 401 and "sk-guess" not in wrong.text
        assert client.get("/v1/models").status_code == 401
        kserve = client.post("/v2/models/acme/intent-onnx/infer", json=infer)
        assert kserve.status_code == 401 and set(kserve.json()) == {"error"}  # KServe's shape
        assert client.get("/v2/models/acme/intent-onnx").status_code == 401
        assert client.get("/v2").status_code == 401
        for key in (KEY, HASHED_KEY):
            headers = {"Authorization": f"Bearer {key}"}
            assert client.post("/v1/classify", json=body, headers=headers).status_code == 200
            assert (
                client.post("/v2/models/acme/intent-onnx/infer", json=infer, headers=headers).status_code
                == 200
            )
        path.write_text("sk-rotated\n")  # no restart; the server looks at the file once a second
        time.sleep(RECHECK_S + 0.1)
        assert (
            client.post("/v1/classify", json=body, headers={"Authorization": f"Bearer {KEY}"}).status_code
            == 401
        )
        rotated = {"Authorization": "Bearer sk-rotated"}
        assert client.post("/v1/classify", json=body, headers=rotated).status_code == 200
        refused = {"endpoint": "/v1/classify", "model": "", "status": "401"}
        assert _metric(client, "fmstack_serve_requests_total", **refused) == 3  # none, wrong, rotated out
    for secret in (KEY, HASHED_KEY, "sk-guess", "sk-rotated"):
        assert secret not in caplog.text


def test_the_openai_and_triton_clients_send_their_keys(serve: Serve, tmp_path: Path) -> None:
    server = serve(["acme/embed-onnx"], api_key_file=_key_file(tmp_path, KEY))
    client = openai.OpenAI(base_url=f"{server.url}/v1", api_key=KEY, max_retries=0)
    result = client.embeddings.create(model="acme/embed-onnx", input=["a cat", "a dog"])
    assert len(result.data) == 2 and len(result.data[0].embedding) == 32
    stranger = openai.OpenAI(base_url=f"{server.url}/v1", api_key="sk-guess", max_retries=0)
    with pytest.raises(openai.AuthenticationError, match="API key is not valid"):
        stranger.embeddings.create(model="acme/embed-onnx", input="a cat")
    triton_client = triton.InferenceServerClient(urlsplit(server.url).netloc)
    text = triton.InferInput("text", [1], "BYTES")
    text.set_data_from_numpy(np.array(["a cat"], dtype=object))
    assert triton_client.is_server_live()  # probes need no key
    vectors = triton_client.infer("acme/embed-onnx", [text], headers={"Authorization": f"Bearer {KEY}"})
    assert vectors.as_numpy("embedding") is not None
    with pytest.raises(InferenceServerException, match="needs an API key") as refused:
        triton_client.infer("acme/embed-onnx", [text])
    assert refused.value.status() == "401"


def test_the_cli_will_not_serve_with_an_unusable_key_file(
    served_hub: Hub, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["serve", "acme/intent-onnx", "--port", "0", "--log-level", "error", "--api-key-file"]
    assert main([*args, str(tmp_path / "nope")]) == 1
    assert "cannot read --api-key-file" in capsys.readouterr().err
    assert main([*args, str(_key_file(tmp_path, ""))]) == 1
    assert "holds no keys" in capsys.readouterr().err


class _Tokens:
    """A second checker, as the hub's tokens will be: it accepts what it knows and counts its calls."""

    def __init__(self, known: set[str]) -> None:
        self.known = known
        self.calls = 0

    async def check(self, key: str) -> bool:
        self.calls += 1
        return key in self.known


def test_any_checker_may_accept_a_key(tmp_path: Path) -> None:
    from starlette.applications import Starlette
    from starlette.responses import JSONResponse, PlainTextResponse
    from starlette.routing import Route

    from fmstack.serve.auth import ApiKeys

    async def refuse(request: object, exc: Exception) -> JSONResponse:
        return JSONResponse({"error": str(exc)}, 401)

    tokens = _Tokens({"hub-token"})
    inner = Starlette(routes=[Route("/v1/models", lambda _: PlainTextResponse("ok"))])
    app = ApiKeys(inner, [KeyFile.open(_key_file(tmp_path, KEY)), tokens], on_error=refuse)

    async def get(key: str | None) -> httpx.Response:
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
            return await client.get("/v1/models", headers=headers)

    assert asyncio.run(get(KEY)).text == "ok" and tokens.calls == 0  # the file said yes first
    assert asyncio.run(get("hub-token")).text == "ok" and tokens.calls == 1
    refused = asyncio.run(get("neither"))
    assert refused.status_code == 401 and refused.headers["www-authenticate"] == 'Bearer realm="fmstack"'
    assert asyncio.run(get(None)).json()["error"].startswith("this server needs an API key")
