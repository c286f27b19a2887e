"""``fmstack serve`` as a real process: SIGTERM drains in-flight requests and exits 0; a model that
cannot load exits 1 with the reason."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from fmstack.cli.main import main
from fmstack.hub import Hub

FMSTACK = str(Path(sys.executable).parent / "fmstack")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _start(*args: str) -> tuple[subprocess.Popen[str], str]:
    port = _free_port()
    cmd = [FMSTACK, "serve", *args, "--port", str(port), "--threads", "1", "--log-level", "info"]
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=os.environ.copy()
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"fmstack serve exited early: {proc.communicate()[0]}")
        try:
            if httpx.get(f"{url}/readyz").status_code == 200:
                return proc, url
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    proc.kill()
    pytest.fail(f"fmstack serve was not ready in 90 s: {proc.communicate()[0]}")


def _post_in_background(url: str, results: list[httpx.Response | Exception]) -> threading.Thread:
    def post() -> None:
        try:
            results.append(
                httpx.post(
                    f"{url}/v1/classify", json={"model": "acme/intent-onnx", "input": "hi"}, timeout=30
                )
            )
        except Exception as exc:
            results.append(exc)

    thread = threading.Thread(target=post)
    thread.start()
    return thread


def test_sigterm_drains_in_flight_requests_then_exits_0(served_hub: Hub) -> None:
    # Each request waits 1.5 s for company, so it is still in flight when SIGTERM arrives.
    proc, url = _start("acme/intent-onnx", "--max-wait-ms", "1500", "--drain-timeout", "20")
    results: list[httpx.Response | Exception] = []
    thread = _post_in_background(url, results)
    time.sleep(0.5)
    proc.send_signal(signal.SIGTERM)
    thread.join(30)
    output = proc.communicate(timeout=30)[0]
    assert proc.returncode == 0, output
    assert len(results) == 1 and isinstance(results[0], httpx.Response), results
    assert results[0].status_code == 200 and results[0].json()["version"] == "acme/intent-onnx:1"
    assert "Shutting down" in output
    with pytest.raises(httpx.TransportError):  # and nothing listens any more
        httpx.get(f"{url}/healthz")


def _ask_readyz(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock.sendall(b"GET /readyz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    return sock


def _status(sock: socket.socket) -> str:
    data = b""
    with sock:
        while chunk := sock.recv(65536):
            data += chunk
    return data.split(b" ", 2)[1].decode() if data else "closed without an answer"


def test_after_sigterm_new_connections_are_answered_503_not_reset(served_hub: Hub) -> None:
    """Closing the listening socket at once would reset connections queued in its backlog; the server
    keeps accepting until connections stop coming, and tells those that ask /readyz it is draining."""
    proc, url = _start("acme/intent-onnx", "--drain-timeout", "5")
    port = int(url.rsplit(":", 1)[1])
    proc.send_signal(signal.SIGTERM)
    time.sleep(0.03)  # the signal handler has run
    answers: list[str] = []
    pending: list[socket.socket] = []
    for _ in range(15):  # 0.3 s of new connections, as a balancer's probes and clients keep coming
        try:
            pending.append(_ask_readyz(port))
        except OSError as exc:
            answers.append(type(exc).__name__)
        time.sleep(0.02)
    answers += [_status(sock) for sock in pending]
    output = proc.communicate(timeout=30)[0]
    assert proc.returncode == 0, output
    assert answers == ["503"] * 15, answers


def test_past_the_drain_deadline_the_server_still_exits_0(served_hub: Hub) -> None:
    proc, url = _start("acme/intent-onnx", "--max-wait-ms", "8000", "--drain-timeout", "1")
    results: list[httpx.Response | Exception] = []
    thread = _post_in_background(url, results)
    time.sleep(0.5)
    started = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    output = proc.communicate(timeout=30)[0]
    thread.join(30)
    assert proc.returncode == 0, output
    assert time.monotonic() - started < 6  # did not wait for the 8 s batch
    # The unfinished request is told why (or cut, if the process won the race to close the socket).
    answer = results[0]
    assert isinstance(answer, httpx.TransportError) or (
        answer.status_code == 503 and "shut down before" in answer.json()["error"]["message"]
    ), answer


def test_the_cli_exits_1_when_a_model_cannot_load(
    served_hub: Hub, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["serve", "acme/missing", "--port", "0", "--log-level", "error"]) == 1
    assert "acme/missing" in capsys.readouterr().err
    (tmp_path / "rows.csv").write_text("text\nhi\n")
    served_hub.push("acme/not-a-model", tmp_path, "dataset")  # resolves, but is no model
    assert main(["serve", "acme/not-a-model", "--port", "0", "--log-level", "error"]) == 1
    assert "cannot serve" in capsys.readouterr().err
    assert main(["serve", "acme/intent-onnx", "--host", "no such host", "--log-level", "error"]) == 1
    assert "use an address of this machine for --host" in capsys.readouterr().err


def test_the_cli_refuses_bad_options(fmstack_home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["serve", "acme/x", "--max-batch-size", "0", "--request-timeout", "0"]) == 1
    err = capsys.readouterr().err
    assert "--max-batch-size: Input should be greater than or equal to 1" in err
    assert "--request-timeout: Input should be greater than 0" in err
    assert main(["serve", "acme/x", "--body-timeout", "0", "--max-input-chars", "0"]) == 1
    err = capsys.readouterr().err
    assert "--body-timeout: Input should be greater than 0" in err
    assert "--max-input-chars: Input should be greater than or equal to 1" in err
    assert main(["serve", "not a ref"]) == 1
    assert "bad ref" in capsys.readouterr().err
    assert main(["serve", "acme/x", "--log-level", "loud"]) == 1
    assert "--log-level 'loud': use one of debug, info, warning, error" in capsys.readouterr().err
    assert main(["serve", "acme/x"]) == 1  # before listening: nothing to serve
    assert "no repo named 'acme/x'" in capsys.readouterr().err
