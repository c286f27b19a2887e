"""A real two-node Ray cluster on this machine (tests/raycluster.py) with the hub on PostgreSQL + S3
(SeaweedFS): ``data process --executor ray`` and ``train --executor ray`` run across both nodes through
the real CLI; a hub in a local FMSTACK_HOME that the second node cannot see (it runs with that folder
hidden, as a node on another machine would) is refused before any run is recorded, naming the node.

Starting the cluster takes about 40 s on an idle 2-core machine, so, like the other Ray test, this
module runs only with FMSTACK_TEST_RAY=1 (``make test`` sets it); the cluster is started once for it.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from fmstack.hub import Hub
from fmstack.hub.blobs import FsspecBlobStore
from fmstack.hub.maintenance import fsck
from fmstack.settings import Settings
from tests.hub.conftest import _drop, postgres_url
from tests.raycluster import DRIVER_ENV, RayCluster, can_hide_folders, ray_cluster
from tests.seaweed import SeaweedS3
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
    url = make_url(postgres_url() or "")
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    name = f"fmstack_scale_{uuid.uuid4().hex[:12]}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield url.set(database=name).render_as_string(hide_password=False)
    finally:
        _drop(admin, name)
        admin.dispose()


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
