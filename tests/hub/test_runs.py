"""``hub.runs.recorded``: a run exists from the start of the work, and ends succeeded, or failed with
the reason (an error, Ctrl-C, SIGTERM), or is discarded when the work made nothing new."""

from __future__ import annotations

import signal
import subprocess
import sys

import pytest

from fmstack.errors import InvalidInput
from fmstack.hub import Hub
from fmstack.settings import Settings


def test_recorded_work_succeeds_fails_with_its_reason_or_is_discarded(hub: Hub) -> None:
    with hub.runs.recorded("data.ingest", {"name": "acme/raw"}) as ok:
        assert hub.runs.get(ok).status == "running"
    assert hub.runs.get(ok).status == "succeeded"
    with hub.runs.recorded("train", {}) as closed:
        hub.runs.finish(closed, "succeeded", spec_update={"result": 1})
    assert hub.runs.get(closed).spec == {"result": 1}
    with pytest.raises(InvalidInput), hub.runs.recorded("data.ingest", {}) as bad:
        raise InvalidInput("no usable rows")
    failed = hub.runs.get(bad)
    assert failed.status == "failed" and failed.spec["error"] == "InvalidInput: no usable rows"
    assert hub.runs.logs(bad) == "failed: InvalidInput: no usable rows\n"
    with pytest.raises(KeyboardInterrupt), hub.runs.recorded("train", {}) as stopped:
        raise KeyboardInterrupt
    assert hub.runs.get(stopped).spec["error"] == "interrupted (Ctrl-C)"
    with hub.runs.recorded("data.ingest", {}) as nothing_new:
        hub.runs.discard(nothing_new)
    assert [r.id for r in hub.runs.recent()] == [stopped, bad, closed, ok]


TERMINATED = """
import sys, time
from fmstack.hub import Hub
with Hub.open() as hub, hub.runs.recorded("train", {}) as run_id:
    print(run_id, flush=True)
    time.sleep(600)
"""


def test_sigterm_during_recorded_work_marks_the_run_failed_as_interrupted(fmstack_home: object) -> None:
    child = subprocess.Popen([sys.executable, "-c", TERMINATED], stdout=subprocess.PIPE, text=True)
    assert child.stdout is not None
    run_id = int(child.stdout.readline())
    child.send_signal(signal.SIGTERM)
    child.wait(timeout=60)
    assert child.returncode != 0
    with Hub(Settings.from_env()) as hub:
        run = hub.runs.get(run_id)
        assert run.status == "failed" and run.spec["error"] == "interrupted (SIGTERM)"
