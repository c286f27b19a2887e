"""The work commands (data ingest/process, train, eval, compress, serve) against a real hub server: they
read versions through the verified checkout cache and push their results, lineage and runs to the
server; the laptop's own hub stays empty."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from fmstack.cli import main as cli_main
from fmstack.hub import Hub
from fmstack.server.remote import RemoteHub
from fmstack.settings import Settings
from tests.server.conftest import RunningHub, free_port
from tests.train.conftest import push_tiny_bert, texts


def _csv(path: Path, n: int, seed: int) -> Path:
    rows, labels = texts(n, seed)
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["text", "label"])
        writer.writerows(zip(rows, labels, strict=True))
    return path


def _json(capsys: pytest.CaptureFixture[str], *args: str) -> dict[str, object]:
    code = cli_main.main(list(args))
    out, err = capsys.readouterr()
    assert code == 0, err
    found: dict[str, object] = json.loads(out)
    return found


SERVED_TEXT = "bank loan cash"


def classify(hub_url: str, env: dict[str, str], *refs: str) -> list[dict[str, object]]:
    """``fmstack --hub URL serve REFS`` as a process: one classification request per ref, then SIGTERM
    (a drained shutdown exits 0)."""
    port = free_port()
    command = [sys.executable, "-m", "fmstack", "--hub", hub_url, "serve", *refs, "--port", str(port)]
    proc = subprocess.Popen(
        [*command, "--threads", "1"], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    url, deadline = f"http://127.0.0.1:{port}", time.monotonic() + 120
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                if httpx.get(f"{url}/readyz").status_code == 200:
                    body = {"input": SERVED_TEXT}
                    answers = [httpx.post(f"{url}/v1/classify", json={**body, "model": r}) for r in refs]
                    assert [a.status_code for a in answers] == [200] * len(refs), [a.text for a in answers]
                    return [a.json() for a in answers]
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        raise AssertionError(f"fmstack serve did not become ready: {proc.poll()}")
    finally:
        proc.terminate()
        output = proc.communicate(timeout=60)[0].decode()
        assert proc.returncode == 0, output


@pytest.mark.slow  # a tiny LoRA training, an ONNX export and a serve process: ~1 min on a loaded 2-core machine
def test_work_commands_read_from_and_write_to_a_remote_hub(
    hub_server: RunningHub,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    laptop = tmp_path / "laptop"
    monkeypatch.setenv("FMSTACK_HOME", str(laptop))
    monkeypatch.setenv("FMSTACK_HUB_TOKEN", hub_server.token)
    with RemoteHub.connect(Settings.at(laptop), hub_server.url, hub_server.token) as remote:
        push_tiny_bert(remote, tmp_path / "files", repo="admin/tiny-bert")  # type: ignore[arg-type]
    hub = ["--hub", hub_server.url]
    train_csv, validation_csv = _csv(tmp_path / "train.csv", 48, 1), _csv(tmp_path / "validation.csv", 12, 2)

    _json(
        capsys, *hub, "data", "ingest", str(train_csv), str(validation_csv), "--name", "admin/raw", "--json"
    )
    spec = tmp_path / "process.yaml"
    spec.write_text("input: admin/raw:1\noutput: admin/clean\nops:\n  - op: dedup_exact\n")
    _json(capsys, *hub, "data", "process", str(spec), "--workers", "1", "--json")
    shown = _json(capsys, *hub, "data", "show", "admin/clean", "--json")
    assert shown["card"]["ops"][0]["duplicates_removed"] >= 0  # type: ignore[index]
    train = [
        "train",
        "finetune",
        "--task",
        "classification",
        "--method",
        "lora",
        "--base",
        "admin/tiny-bert:1",
    ]
    train += [
        "--data",
        "admin/clean:1",
        "--max-steps",
        "3",
        "--lr",
        "0.01",
        "--output",
        "admin/lora",
        "--json",
    ]
    trained = _json(capsys, *hub, *train)
    scored = _json(
        capsys, *hub, "eval", "admin/lora:1", "--data", "admin/clean:1", "--split", "validation", "--json"
    )
    compress = ["compress", "admin/lora:1", "--latency-runs", "1", "--output", "admin/lora-onnx", "--json"]
    compressed = _json(capsys, *hub, *compress)
    served = classify(
        hub_server.url,
        {**hub_server.env, "FMSTACK_HOME": str(laptop), "FMSTACK_HUB_TOKEN": hub_server.token},
        "admin/lora-onnx:1",
        "admin/lora:1",  # the adapter on its base, both checked out from the server
    )

    code = cli_main.main([*hub, *train, "--nproc", "2"])  # each rank would reopen a local hub
    assert code == 1 and "train with --nproc 1" in capsys.readouterr().err  # and no run was opened (below)

    assert [a["version"] for a in served] == ["admin/lora-onnx:1", "admin/lora:1"]
    merged, adapter = (a["data"][0]["scores"] for a in served)  # type: ignore[index]
    assert merged == pytest.approx(adapter, abs=1e-3)  # the merged ONNX export answers as the adapter
    with Hub(Settings.at(hub_server.home)) as server:  # what landed on the server, read from its own hub
        assert {r.repo for r in server.ls()} == {
            "admin/tiny-bert",
            "admin/raw",
            "admin/clean",
            "admin/lora",
            "admin/lora-onnx",
        }
        lineage = server.lineage("admin/lora-onnx:1").upstream
        assert [p.ref for p in lineage.parents] == ["admin/lora:1"]
        assert [p.ref for p in lineage.parents[0].parents] == ["admin/tiny-bert:1", "admin/clean:1"]
        assert [p.ref for p in lineage.parents[0].parents[1].parents] == ["admin/raw:1"]
        runs = {r.kind: r for r in server.runs.recent()}
        assert {"data.ingest", "data.process", "train", "eval", "compress"} <= set(runs)
        assert all(r.status == "succeeded" for r in runs.values())
        assert len(server.runs.recent(kind="train")) == 1  # the refused --nproc 2 opened none
        assert runs["eval"].id == scored["run_id"] and runs["compress"].id == compressed["run_id"]
        assert runs["train"].outputs == ["admin/lora:1"] and runs["train"].id == trained["run_id"]
        assert server.runs.metrics(runs["train"].id)  # training's progress was recorded there too
    with Hub(Settings.at(laptop)) as mine:  # nothing went to the laptop's own hub
        assert mine.ls() == [] and mine.runs.recent() == []
    assert os.listdir(laptop / "remote-cache")  # the base and data were read through the checkout cache

    # A read-only token is refused when the command opens its run on the server, before any work.
    reader = hub_server.cli("server", "token", "create", "admin", "--scope", "read").stdout.strip()
    monkeypatch.setenv("FMSTACK_HUB_TOKEN", reader)
    code = cli_main.main([*hub, "data", "ingest", str(train_csv), "--name", "admin/other"])
    assert code == 1 and "no write scope" in capsys.readouterr().err


def test_distributed_training_refuses_a_remote_hub_with_the_way_out(tmp_path: Path) -> None:
    """Each rank of a torchrun or Ray job opens the hub again from the job's settings, which name a
    local hub only: against a remote hub the job is refused before any rank starts."""
    from fmstack.errors import Unsupported
    from fmstack.train.launch import write_job
    from fmstack.train.spec import parse_spec

    spec = parse_spec(
        {"task": "classification", "base": "a/b:1", "data": "a/d:1", "nproc": 2, "output": "a/o"}
    )
    remote = RemoteHub.connect(Settings.at(tmp_path), "http://127.0.0.1:9", None)  # never reached
    with remote, pytest.raises(Unsupported, match="--nproc 1"):
        write_job(remote, spec, 1, tmp_path / "out", tmp_path)
