"""`fmstack demo` end to end on a fresh FMSTACK_HOME: the real lifecycle, the built-in base model."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fmstack.cli import main as cli_main
from fmstack.demo import sample
from fmstack.hub import Hub


def test_sample_is_reproducible_and_has_duplicates_to_remove() -> None:
    rows = sample.generate()
    assert rows == sample.generate()
    assert len({intent for _, intent in rows}) == len(sample.TEMPLATES)
    assert len(rows) > len(set(rows))


def test_demo_runs_the_whole_lifecycle(fmstack_home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli_main.main(["demo", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    versions = summary["versions"]
    assert {"base", "raw", "data", "trained", "compressed", "production"} <= set(versions)
    assert versions["trained"]["kind"] == "adapter"
    assert summary["eval_metrics"]["accuracy"] >= 0.9
    compression = summary["compression"]
    assert compression["size_ratio"] < 0.3 and compression["drop_points"] <= 1.0
    assert len(summary["predictions"]) == 5 and summary["embedding_dims"] == 384
    assert summary["latency_ms"]["requests"] == 40
    with Hub.open() as hub:
        served = hub.resolve("demo/intent-onnx@production")
        assert served.ref == versions["compressed"]["repo"] + ":" + str(versions["compressed"]["number"])
        upstream = {n.ref for n in hub.lineage(served.ref).upstream.parents}
        assert upstream == {"demo/intent-lora:1", "demo/requests:1"}
        kinds = [r.kind for r in hub.runs.recent()]
        assert sorted(kinds) == ["compress", "data.ingest", "data.process", "eval", "train"]


def test_demo_refuses_a_missing_data_file(fmstack_home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli_main.main(["demo", "--data", str(fmstack_home / "nope.csv")]) == 1
    assert "no such file" in capsys.readouterr().err
