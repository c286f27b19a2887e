"""Hub operations, run against SQLite and a real PostgreSQL server (see conftest)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from fmstack.errors import Conflict, InvalidInput, NotFound
from fmstack.hub import Hub
from fmstack.hub.maintenance import fsck
from fmstack.settings import Settings
from tests.hub.folders import make_folder


def test_push_creates_increasing_immutable_versions(any_hub: Hub, tmp_path: Path) -> None:
    v1 = any_hub.push("acme/m", make_folder(tmp_path / "a", {"w.bin": b"1", "cfg/x.json": "{}"}), "model")
    v2 = any_hub.push("acme/m", make_folder(tmp_path / "b", {"w.bin": b"2"}), "model", message="second")
    assert (v1.number, v2.number) == (1, 2)
    assert v1.digest != v2.digest
    assert v1.file_count == 2 and v1.total_size == 3
    assert any_hub.resolve("acme/m").number == 2
    assert any_hub.resolve("acme/m:1").digest == v1.digest
    assert [f.path for f in any_hub.info("acme/m:1").files] == ["cfg/x.json", "w.bin"]
    assert any_hub.info("acme/m:2").version.message == "second"


def test_pushing_identical_content_returns_the_latest_version(any_hub: Hub, tmp_path: Path) -> None:
    folder = make_folder(tmp_path / "a", {"w.bin": b"same"})
    first = any_hub.push("acme/m", folder, "model")
    again = any_hub.push("acme/m", folder, "model")
    assert again.number == first.number == 1
    assert len(any_hub.versions("acme/m")) == 1


def test_pull_writes_verified_files(any_hub: Hub, tmp_path: Path) -> None:
    files = {"a.txt": "alpha", "sub/b.bin": os.urandom(10_000)}
    any_hub.push("acme/d", make_folder(tmp_path / "src", files), "dataset")
    any_hub.pull("acme/d", tmp_path / "out")
    assert (tmp_path / "out/a.txt").read_text() == "alpha"
    assert (tmp_path / "out/sub/b.bin").read_bytes() == files["sub/b.bin"]


def test_a_single_file_can_be_pushed(any_hub: Hub, tmp_path: Path) -> None:
    path = tmp_path / "weights.safetensors"
    path.write_bytes(b"abc")
    version = any_hub.push("acme/one", path, "model")
    assert [f.path for f in any_hub.info(version.ref).files] == ["weights.safetensors"]


def test_blobs_are_deduplicated_across_repos(any_hub: Hub, tmp_path: Path) -> None:
    base = os.urandom(100_000)
    for i in range(3):
        folder = make_folder(tmp_path / f"a{i}", {"base.bin": base, "adapter.bin": f"adapter {i}"})
        any_hub.push(f"acme/adapter-{i}", folder, "adapter")
    stored = list(any_hub.blobs.list())
    assert len(stored) == 4  # one base + three adapters
    assert sum(any_hub.blobs.size(sha) for sha in stored) < 2 * len(base)


def test_aliases_move_and_every_move_is_logged(any_hub: Hub, tmp_path: Path) -> None:
    any_hub.push("acme/m", make_folder(tmp_path / "a", {"w": "1"}), "model", alias="staging")
    any_hub.push("acme/m", make_folder(tmp_path / "b", {"w": "2"}), "model")
    any_hub.tag("acme/m:2", "production")
    any_hub.tag("acme/m:1", "production")
    any_hub.tag("acme/m:1", "production")  # no move, no log entry
    assert any_hub.resolve("acme/m@production").number == 1
    assert any_hub.ls()[0].aliases == {"production": 1, "staging": 1}
    any_hub.untag("acme/m", "staging")
    history = [(e.alias, e.old, e.new) for e in any_hub.alias_history("acme/m")]
    assert history == [
        ("staging", None, 1),
        ("production", None, 2),
        ("production", 2, 1),
        ("staging", 1, None),
    ]
    assert all(e.who == any_hub.settings.user for e in any_hub.alias_history("acme/m"))


def test_unknown_repo_version_and_alias_have_clear_errors(any_hub: Hub, tmp_path: Path) -> None:
    any_hub.push("acme/m", make_folder(tmp_path / "a", {"w": "1"}), "model", alias="staging")
    with pytest.raises(NotFound, match="no repo named 'acme/nope'"):
        any_hub.resolve("acme/nope")
    with pytest.raises(NotFound, match=r"no version 7 \(versions: 1\)"):
        any_hub.resolve("acme/m:7")
    with pytest.raises(NotFound, match=r"no alias 'prod' \(aliases: staging\)"):
        any_hub.resolve("acme/m@prod")
    with pytest.raises(InvalidInput, match="bad ref"):
        any_hub.resolve("acme")


def test_kind_must_match_the_repo(any_hub: Hub, tmp_path: Path) -> None:
    any_hub.push("acme/m", make_folder(tmp_path / "a", {"w": "1"}), "model")
    with pytest.raises(Conflict, match="is a model repo"):
        any_hub.push("acme/m", make_folder(tmp_path / "b", {"w": "2"}), "dataset")
    with pytest.raises(InvalidInput, match="bad kind"):
        any_hub.push("acme/x", tmp_path / "a", "weights")  # type: ignore[arg-type]


def test_runs_link_versions_into_lineage(any_hub: Hub, tmp_path: Path) -> None:
    base = any_hub.push("acme/base", make_folder(tmp_path / "b", {"w": "base"}), "model")
    data = any_hub.push("acme/data", make_folder(tmp_path / "d", {"t": "rows"}), "dataset")
    run = any_hub.runs.start("train", {"lr": 0.1}, inputs=[base.ref, "acme/data"])
    any_hub.runs.log_metrics(run, 1, {"loss": 2.0})
    any_hub.runs.log_metrics(run, 2, {"loss": 1.0, "accuracy": 0.5})
    any_hub.runs.append_log(run, "step 2 done")
    adapter = any_hub.push("acme/adapter", make_folder(tmp_path / "a", {"w": "lora"}), "adapter", run_id=run)
    any_hub.runs.finish(run, "succeeded")
    compress_run = any_hub.runs.start("compress", {}, inputs=[adapter.ref])
    onnx = any_hub.push("acme/onnx", make_folder(tmp_path / "o", {"m": "onnx"}), "model", run_id=compress_run)

    info = any_hub.runs.get(run)
    assert info.status == "succeeded" and info.ended_at is not None
    assert info.inputs == [base.ref, data.ref] and info.outputs == [adapter.ref]
    assert info.environment["python"] and "torch" in info.environment
    assert [(m.name, m.step, m.value) for m in any_hub.runs.metrics(run, "loss")] == [
        ("loss", 1, 2.0),
        ("loss", 2, 1.0),
    ]
    assert any_hub.runs.logs(run) == "step 2 done\n"

    detail = any_hub.info(adapter.ref)
    assert (
        detail.produced_by == run and detail.inputs == [base.ref, data.ref] and detail.used_by == [onnx.ref]
    )
    lineage = any_hub.lineage(onnx.ref)
    (parent,) = lineage.upstream.parents
    assert lineage.upstream.run_kind == "compress"
    assert parent.ref == adapter.ref and parent.run_kind == "train"
    assert {p.ref for p in parent.parents} == {base.ref, data.ref}
    down = any_hub.lineage(base.ref).downstream
    assert [d.ref for d in down] == [adapter.ref] and [d.ref for d in down[0].parents] == [onnx.ref]


def test_rm_is_refused_while_aliases_or_downstream_depend_on_it(any_hub: Hub, tmp_path: Path) -> None:
    base = any_hub.push("acme/base", make_folder(tmp_path / "b", {"w": "base"}), "model", alias="production")
    run = any_hub.runs.start("train", {}, inputs=[base.ref])
    any_hub.push("acme/child", make_folder(tmp_path / "c", {"w": "child"}), "model", run_id=run)
    with pytest.raises(Conflict) as err:
        any_hub.rm(base.ref)
    assert "alias 'production'" in str(err.value) and "acme/child:1" in str(err.value)
    assert any_hub.resolve(base.ref).number == 1  # nothing removed

    removed = any_hub.rm(base.ref, force=True)
    assert [v.ref for v in removed] == [base.ref]
    with pytest.raises(NotFound):
        any_hub.resolve(base.ref)
    assert [(e.alias, e.old, e.new) for e in any_hub.alias_history("acme/base")][-1] == (
        "production",
        1,
        None,
    )
    assert fsck(any_hub).ok  # the blob is an orphan now, which is not an error


def test_rm_of_a_whole_repo(any_hub: Hub, tmp_path: Path) -> None:
    any_hub.push("acme/m", make_folder(tmp_path / "a", {"w": "1"}), "model")
    any_hub.push("acme/m", make_folder(tmp_path / "b", {"w": "2"}), "model")
    assert len(any_hub.rm("acme/m")) == 2
    assert any_hub.ls() == []
    any_hub.push("acme/m", make_folder(tmp_path / "a", {"w": "1"}), "dataset")  # the name is free again


def test_cards_are_validated_and_editable(any_hub: Hub, tmp_path: Path) -> None:
    card = "---\ntask: text-classification\nlicense: mit\nmetrics:\n  accuracy: 0.9\n---\n# Intent\n"
    version = any_hub.push("acme/m", make_folder(tmp_path / "a", {"w": "1"}), "model", card=card)
    assert any_hub.card(version.ref) == card
    with pytest.raises(InvalidInput, match="front matter is invalid: tags"):
        any_hub.set_card(version.ref, "---\ntags: 5\n---\nbody")
    with pytest.raises(InvalidInput, match="not valid YAML"):
        any_hub.set_card(version.ref, "---\ntask: [unclosed\n---\nbody")
    any_hub.set_card(version.ref, "# new body")
    assert any_hub.card(version.ref) == "# new body"
    assert any_hub.resolve(version.ref).digest == version.digest  # a card is metadata, not content
    # A later version inherits the card unless it brings its own.
    assert (
        any_hub.card(any_hub.push("acme/m", make_folder(tmp_path / "b", {"w": "2"}), "model").ref)
        == "# new body"
    )


def test_ls_filters_by_kind_and_namespace(any_hub: Hub, tmp_path: Path) -> None:
    folder = make_folder(tmp_path / "a", {"w": "1"})
    any_hub.push("acme/m", folder, "model")
    any_hub.push("acme/d", folder, "dataset")
    any_hub.push("other/m", folder, "model")
    assert [r.repo for r in any_hub.ls()] == ["acme/d", "acme/m", "other/m"]
    assert [r.repo for r in any_hub.ls(kind="model")] == ["acme/m", "other/m"]
    assert [r.repo for r in any_hub.ls(namespace="acme", kind="dataset")] == ["acme/d"]


def test_checkout_is_a_cached_verified_copy(any_hub: Hub, tmp_path: Path) -> None:
    any_hub.push("acme/m", make_folder(tmp_path / "a", {"config.json": "{}", "w.bin": b"123"}), "model")
    path = any_hub.checkout("acme/m")
    assert (path / "w.bin").read_bytes() == b"123"
    assert any_hub.checkout("acme/m:1") == path
    assert any_hub.read_file("acme/m", "config.json") == b"{}"
    with pytest.raises(NotFound, match="no file 'nope'"):
        any_hub.read_file("acme/m", "nope")


def test_a_run_whose_process_died_reads_abandoned(backend_settings: Settings) -> None:
    # A real process records a running run and dies without finishing it (as under SIGKILL).
    code = "from fmstack.hub import Hub\nwith Hub.open() as hub: print(hub.runs.start('train', {}))"
    child = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert child.returncode == 0, child.stderr
    with Hub(backend_settings) as hub:
        assert hub.runs.get(int(child.stdout)).status == "abandoned"
        alive = hub.runs.start("train", {})  # this process is alive: still running
        assert hub.runs.get(alive).status == "running"
        hub.runs.finish(alive, "failed")
        assert hub.runs.get(alive).status == "failed"
