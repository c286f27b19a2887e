"""``fmstack fed simulate`` end to end on a tiny model: two client processes with skewed shares,
two FedProx rounds (the proximal term in the training loop), each round's global adapter a version
whose lineage reaches the clients' runs, and the last one answering as the server evaluated it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fmstack.cli.main import main
from fmstack.hub import Hub
from fmstack.settings import Settings
from fmstack.train.evaluate import evaluate
from fmstack.train.inference import load


def test_simulate_runs_a_federation_end_to_end(
    tiny_home: tuple[Path, str, str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    home, base, data = tiny_home
    monkeypatch.setenv("FMSTACK_HOME", str(home))
    code = main(
        [
            "fed",
            "simulate",
            "--data",
            data,
            "--base",
            base,
            "--clients",
            "2",
            "--dirichlet",
            "0.5",
            "--rounds",
            "2",
            "--strategy",
            "fedprox",
            "--name",
            "test/sim",
            "--json",
        ],
    )
    out = capsys.readouterr()
    assert code == 0, out.err
    status = json.loads(out.out)
    assert status["status"] == "finished" and status["global_ref"] == "test/sim:3"
    assert [r["status"] for r in status["rounds"]] == ["closed", "closed"]
    for r in status["rounds"]:
        assert [u["status"] for u in r["updates"]] == ["accepted", "accepted"]
        assert r["metrics"]["examples"] == 96 and 0 <= r["metrics"]["eval_accuracy"] <= 1
    with Hub(Settings.at(home)) as hub:
        round_run = hub.runs.get(int(status["rounds"][1]["run_id"]))
        assert round_run.kind == "fed-round" and "test/sim:2" in round_run.inputs
        update = hub.resolve(round_run.inputs[-1])
        assert (
            update.repo == "test/sim-updates" and hub.runs.get(int(update.run_id or 0)).kind == "fed-client"
        )
        metrics = evaluate(load(hub, "test/sim:3"), hub.checkout(data), "validation")
        assert metrics["accuracy"] == pytest.approx(status["rounds"][1]["metrics"]["eval_accuracy"])
