"""The loop end to end on a tiny model: a served alias logs predictions and takes feedback, the report
reads them, the loop retrains on old data + feedback and moves the alias, and the server follows it;
then a gate that must fail leaves production where it was."""

from __future__ import annotations

import json
import time
from pathlib import Path

import httpx
import pyarrow as pa
import pytest
import yaml

from fmstack.cli.main import main
from fmstack.hub import Hub
from fmstack.serve import ServeSettings, start_server
from fmstack.train.run import train
from fmstack.train.spec import parse_spec
from tests.tiny import TOPICS
from tests.train.conftest import push_dataset, push_tiny_bert, texts

MODEL = "test/intent@production"


def _split(n: int, seed: int) -> pa.Table:
    t, labels = texts(n, seed)
    return pa.table({"text": t, "label": labels})


def _loop_spec(path: Path, data: str, logs: Path, **gate: object) -> Path:
    spec = {
        "model": MODEL,
        "data": data,
        "feedback": "test/intent-feedback",
        "feedback_weight": 2,
        "trigger": {"min_feedback": 20},
        "train": {
            "task": "classification",
            "method": "full",
            "base": "test/tiny-bert",
            "output": "test/intent",
            "max_steps": 12,
            "lr": 5e-3,
            "batch_size": 16,
        },
        "gate": {"holdout": data, "holdout_split": "test", "min_feedback_rows": 1, **gate},
        "log_dir": str(logs),
    }
    path.write_text(yaml.safe_dump(spec))
    return path


def _json(capsys: pytest.CaptureFixture[str]) -> dict[str, object]:
    out: dict[str, object] = json.loads(capsys.readouterr().out)
    return out


def test_feedback_retrains_gates_promotes_and_the_server_follows(
    hub: Hub, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base = push_tiny_bert(hub, tmp_path)
    splits = {"train": _split(48, 1), "validation": _split(12, 2), "test": _split(30, 3)}
    data = push_dataset(hub, tmp_path, "test/topics", splits, labels=sorted(TOPICS))
    first = train(
        hub,
        parse_spec(
            {
                "task": "classification",
                "method": "full",
                "base": base,
                "data": data,
                "max_steps": 2,
                "output": "test/intent",
            }
        ),
    )
    hub.tag(first.output.ref, "production")
    logs = tmp_path / "logs"
    settings = ServeSettings(
        models=[MODEL],
        port=0,
        threads=1,
        poll_aliases_s=0.2,
        log_predictions=1.0,
        log_dir=logs,
        log_flush_s=0.1,
    )
    with (
        start_server(settings, hub.settings) as server,
        httpx.Client(base_url=server.url, timeout=30) as client,
    ):
        traffic, truth = texts(40, seed=7)
        for text, label in zip(traffic, truth, strict=True):
            body = client.post("/v1/classify", json={"model": MODEL, "input": text}).json()
            assert body["version"] == "test/intent:1"
            r = client.post("/v1/feedback", json={"request_id": body["request_id"], "label": label})
            assert r.status_code == 200, r.text
        time.sleep(0.3)  # > --log-flush: the rows are on disk

        assert (
            main(
                [
                    "monitor",
                    "report",
                    MODEL,
                    "--log-dir",
                    str(logs),
                    "--json",
                    "--plot",
                    str(tmp_path / "r.png"),
                ]
            )
            == 0
        )
        report = _json(capsys)
        assert report["version"] == "test/intent:1" and report["predictions"] == 40
        assert report["training_data"] == data and report["feedback"]["count"] == 40  # type: ignore[index]
        assert report["drift"]["label_psi"] is not None  # type: ignore[index]
        assert (tmp_path / "r.png").read_bytes()[:4] == b"\x89PNG"

        export = ["monitor", "export", MODEL, "--to", "test/fb", "--log-dir", str(logs), "--json"]
        assert main(export) == 0
        exported = _json(capsys)
        assert sum(exported["splits"].values()) == 40 and exported["feedback"] == 40  # type: ignore[attr-defined]
        assert hub.info(str(exported["version"])).inputs == ["test/intent:1"]  # lineage to the model
        assert main([*export, "--since", "2099-01-01"]) == 1
        assert "no feedback with a label" in capsys.readouterr().err

        loop_yaml = _loop_spec(
            tmp_path / "loop.yaml", data, logs, min_gain=-1.0, min_feedback_gain=-1.0, max_class_drop=1.0
        )
        assert main(["loop", "run", str(loop_yaml), "--dry-run", "--json"]) == 0
        assert _json(capsys)["status"] == "planned" and hub.resolve(MODEL).number == 1

        assert main(["loop", "run", str(loop_yaml), "--once", "--json"]) == 0
        outcome = _json(capsys)
        assert outcome["status"] == "promoted" and outcome["promoted"] == "test/intent:2"
        assert set(outcome["runs"]) == {"loop", "export", "train", "gate"}  # type: ignore[arg-type]
        assert hub.resolve(MODEL).ref == "test/intent:2"
        lineage = hub.info("test/intent:2").inputs
        assert any(ref.startswith("test/intent-feedback-train:") for ref in lineage)  # old data + feedback

        deadline = time.monotonic() + 30  # the server follows the alias without a restart
        while (
            client.post("/v1/classify", json={"model": MODEL, "input": "ball"}).json()["version"]
            != "test/intent:2"
        ):
            assert time.monotonic() < deadline, "the server did not swap to the promoted version"
            time.sleep(0.1)

        # Nothing new since that loop run: the trigger waits.
        assert main(["loop", "run", str(loop_yaml), "--once", "--json"]) == 0
        assert _json(capsys)["status"] == "waiting"

        # New feedback, and a gate no candidate can pass: the gate run fails, production stays.
        for text, label in zip(traffic[:20], truth[:20], strict=True):
            rid = client.post("/v1/classify", json={"model": MODEL, "input": text}).json()["request_id"]
            client.post("/v1/feedback", json={"request_id": rid, "label": label})
        time.sleep(0.3)
        strict = _loop_spec(tmp_path / "strict.yaml", data, logs, min_gain=1.01)
        assert main(["loop", "run", str(strict), "--once"]) == 1
        assert "did not pass the gate" in capsys.readouterr().err
    assert hub.resolve(MODEL).ref == "test/intent:2"
    gate_run = hub.runs.recent("gate", limit=1)[0]
    assert gate_run.status == "failed" and "min_gain" in str(gate_run.spec.get("error"))
    assert hub.runs.recent("loop", limit=1)[0].status == "failed"
