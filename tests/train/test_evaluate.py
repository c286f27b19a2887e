"""``eval_run``: an eval is recorded as a run from the start, and a failure leaves a failed run with
its reason (the metrics themselves are checked end to end in test_cli.py)."""

from __future__ import annotations

import pytest

from fmstack.errors import InvalidInput
from fmstack.hub import Hub
from fmstack.train.evaluate import eval_run
from fmstack.train.inference import Loaded


def test_an_eval_that_fails_is_a_failed_run_with_its_reason(hub: Hub, tiny_bert: str, topics: str) -> None:
    def broken(_hub: Hub, _ref: str) -> Loaded:
        assert [r.status for r in hub.runs.recent("eval")] == ["running"]  # recorded before the work
        raise InvalidInput("cannot load it")

    with pytest.raises(InvalidInput):
        eval_run(hub, tiny_bert, topics, "test", broken)
    (run,) = hub.runs.recent("eval")
    assert run.status == "failed" and run.spec["error"] == "InvalidInput: cannot load it"
    assert set(run.inputs) == {"test/tiny-bert:1", "test/topics:1"}
    assert "failed: InvalidInput: cannot load it" in hub.runs.logs(run.id)


def test_an_interrupted_eval_is_a_failed_run(hub: Hub, tiny_bert: str, topics: str) -> None:
    def interrupted(_hub: Hub, _ref: str) -> Loaded:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        eval_run(hub, tiny_bert, topics, "test", interrupted)
    (run,) = hub.runs.recent("eval")
    assert run.status == "failed" and run.spec["error"] == "interrupted (Ctrl-C)"
