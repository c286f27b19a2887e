"""``RemoteHub`` answers exactly like the local ``Hub`` it fronts: the same entities for every read, the
same errors, verified bytes, and a checkout cache bounded in size."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from fmstack.errors import Conflict, NotFound
from fmstack.server import remote as remote_mod
from fmstack.server.client import HubClient
from fmstack.server.remote import RemoteHub
from fmstack.settings import Settings
from tests.hub.folders import make_folder
from tests.server.conftest import AppHub


@pytest.fixture
def remote(app_hub: AppHub, tmp_path: Path) -> RemoteHub:
    http = TestClient(app_hub.client.app, raise_server_exceptions=False)
    return RemoteHub(
        Settings.at(tmp_path / "client-home"), HubClient("http://testserver", app_hub.token, http=http)
    )


def test_reads_equal_the_local_hubs(app_hub: AppHub, remote: RemoteHub, tmp_path: Path) -> None:
    local = app_hub.hub
    remote.push(
        "admin/m", make_folder(tmp_path / "v1", {"config.json": "{}", "w.safetensors": "one"}), "model"
    )
    run_id = local.runs.start("train", {"lr": 0.1}, inputs=["admin/m:1"])
    local.push("admin/a", make_folder(tmp_path / "a", {"adapter.safetensors": "a"}), "adapter", run_id=run_id)
    local.runs.log_metrics(run_id, 1, {"loss": 0.5})
    local.runs.finish(run_id)
    remote.tag("admin/m:1", "prod")
    remote.set_card("admin/m:1", "# m\n")
    assert remote.info("admin/m@prod") == local.info("admin/m@prod")
    assert remote.resolve("admin/m") == local.resolve("admin/m")
    assert remote.ls() == local.ls() and remote.ls(kind="adapter") == local.ls(kind="adapter")
    assert remote.versions("admin/m") == local.versions("admin/m")
    assert remote.alias_history("admin/m") == local.alias_history("admin/m")
    assert remote.card("admin/m:1") == local.card("admin/m:1") == "# m\n"
    assert remote.lineage("admin/a:1") == local.lineage("admin/a:1")
    assert remote.runs.get(run_id) == local.runs.get(run_id)
    assert remote.runs.recent() == local.runs.recent()
    assert remote.runs.metrics(run_id) == local.runs.metrics(run_id)
    assert remote.read_file("admin/m:1", "w.safetensors") == b"one"


def test_errors_are_the_local_hubs(remote: RemoteHub, tmp_path: Path) -> None:
    with pytest.raises(NotFound, match="no repo named 'admin/none'"):
        remote.info("admin/none")
    remote.push("admin/m", make_folder(tmp_path / "v1", {"w.safetensors": "one"}), "model")
    with pytest.raises(Conflict):
        remote.check_repo_kind("admin/m", "dataset")


def test_untag_and_rm(app_hub: AppHub, remote: RemoteHub, tmp_path: Path) -> None:
    remote.push("admin/m", make_folder(tmp_path / "v1", {"w.safetensors": "one"}), "model")
    remote.push("admin/m", make_folder(tmp_path / "v2", {"w.safetensors": "two"}), "model")
    remote.tag("admin/m:1", "prod")
    remote.untag("admin/m", "prod")
    assert [v.number for v in remote.rm("admin/m:1")] == [1]
    assert [v.number for v in app_hub.hub.versions("admin/m")] == [2]


def test_checkout_is_cached_by_digest_and_bounded(
    remote: RemoteHub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    remote.push("admin/m", make_folder(tmp_path / "v1", {"w.safetensors": "1" * 1000}), "model")
    remote.push("admin/m", make_folder(tmp_path / "v2", {"w.safetensors": "2" * 1000}), "model")
    first = remote.checkout("admin/m:1")
    assert (first / "w.safetensors").read_text() == "1" * 1000
    assert remote.checkout("admin/m:1") == first  # reused, not pulled again
    monkeypatch.setattr(remote_mod, "CACHE_BYTES", 1500)
    second = remote.checkout("admin/m:2")
    assert second.is_dir() and not first.exists()  # the least recently used copy made room


def test_work_recorded_remotely_arrives_with_its_lineage(
    app_hub: AppHub, remote: RemoteHub, tmp_path: Path
) -> None:
    remote.push("admin/base", make_folder(tmp_path / "base", {"w.safetensors": "base"}), "model")
    with remote.runs.recorded("train", {"lr": 0.1}, inputs=["admin/base:1"], device="cpu") as run_id:
        remote.runs.log_metrics(run_id, 1, {"loss": 0.25})
        remote.runs.append_log(run_id, "step 1")
        folder = make_folder(tmp_path / "out", {"adapter.safetensors": "a"})
        remote.push("admin/tuned", folder, "adapter", run_id=run_id)
    local = app_hub.hub
    run = local.runs.get(run_id)
    assert (run.status, run.creator, run.inputs, run.outputs) == (
        "succeeded",
        "admin",
        ["admin/base:1"],
        ["admin/tuned:1"],
    )
    assert [m.value for m in local.runs.metrics(run_id)] == [0.25] and "step 1" in local.runs.logs(run_id)
    assert remote.lineage("admin/tuned:1") == local.lineage("admin/tuned:1")
    with pytest.raises(ZeroDivisionError), remote.runs.recorded("train", {}) as failed:
        1 / 0  # noqa: B018
    assert (
        local.runs.get(failed).status == "failed"
        and "ZeroDivisionError" in local.runs.get(failed).spec["error"]
    )


def test_only_a_runs_creator_may_change_it_or_attach_versions(
    app_hub: AppHub, remote: RemoteHub, tmp_path: Path
) -> None:
    run_id = remote.runs.start("train", {})
    other = RemoteHub(
        Settings.at(tmp_path / "eve-home"),
        HubClient("http://testserver", app_hub.user("eve", "write"), http=TestClient(app_hub.client.app)),
    )
    with pytest.raises(NotFound):  # a run that names no version is its creator's and admins' only
        other.runs.get(run_id)
    with pytest.raises(NotFound):
        other.runs.finish(run_id, "failed")
    with pytest.raises(NotFound):
        other.push("eve/m", make_folder(tmp_path / "m", {"w.safetensors": "m"}), "model", run_id=run_id)
    assert app_hub.hub.runs.get(run_id).status == "running"


@pytest.mark.slow  # trains a tiny LoRA adapter (~10 s on a loaded 2-core machine)
def test_training_against_a_remote_hub_records_its_run_and_lineage_there(
    app_hub: AppHub, remote: RemoteHub, tmp_path: Path
) -> None:
    """fmstack.train.run.train on a RemoteHub: base and data come through the verified checkout cache,
    the run is recorded on the server and the adapter arrives with its lineage."""
    from fmstack.train.run import train
    from fmstack.train.spec import parse_spec
    from tests.tiny import TOPICS
    from tests.train.conftest import classification_table, push_dataset, push_tiny_bert

    local = app_hub.hub
    push_tiny_bert(local, tmp_path / "files", repo="acme/tiny-bert")
    splits = {"train": classification_table(32, 1), "validation": classification_table(12, 2)}
    push_dataset(local, tmp_path / "files", "acme/topics", splits, labels=sorted(TOPICS))
    spec = {"task": "classification", "base": "acme/tiny-bert:1", "data": "acme/topics:1", "max_steps": 3}
    spec |= {"lr": 1e-2, "seed": 3, "method": "lora", "output": "acme/topics-lora"}
    result = train(remote, parse_spec(spec))
    run = local.runs.get(result.output.run_id or 0)
    assert (run.status, run.inputs, run.outputs) == (
        "succeeded",
        ["acme/tiny-bert:1", "acme/topics:1"],
        ["acme/topics-lora:1"],
    )
    assert [p.ref for p in local.lineage("acme/topics-lora:1").upstream.parents] == [
        "acme/tiny-bert:1",
        "acme/topics:1",
    ]
