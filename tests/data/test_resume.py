"""``--resume`` after SIGKILL: a real ``fmstack data process`` subprocess is killed mid-run, then
resumed; it reuses the finished shards and gives the same digest as an uninterrupted run."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from fmstack.data.ingest import IngestSpec, ingest
from fmstack.hub import Hub
from fmstack.hub.maintenance import fsck, gc

from .conftest import synthetic_rows, write_csv

FMSTACK = str(Path(sys.executable).with_name("fmstack"))
SPEC = """input: acme/raw
output: acme/clean
seed: 3
ops:
  - op: normalize
  - op: dedup_near
    threshold: 0.8
    num_perm: 256
  - op: split
"""


def _run(args: list[str], env: dict[str, str]) -> dict[str, object]:
    done = subprocess.run([FMSTACK, *args], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)  # type: ignore[no-any-return]


@pytest.mark.slow
def test_resume_after_sigkill_gives_the_same_digest(hub: Hub, fmstack_home: Path, tmp_path: Path) -> None:
    path = write_csv(tmp_path / "data.csv", synthetic_rows(5000))
    ingest(hub, IngestSpec(name="acme/raw", paths=[str(path)], shard_rows=250))  # 27 shards
    spec = tmp_path / "spec.yaml"
    spec.write_text(SPEC)
    env = {**os.environ, "FMSTACK_HOME": str(fmstack_home)}
    args = ["data", "process", str(spec), "--workers", "1", "--json"]
    child = subprocess.Popen([FMSTACK, *args], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    work = fmstack_home / "work"
    deadline = time.monotonic() + 60
    while len(list(work.glob("*/stage-0/*.done.json"))) < 3 and time.monotonic() < deadline:
        time.sleep(0.02)
    child.send_signal(signal.SIGKILL)
    assert child.wait() == -signal.SIGKILL, "the run finished before it could be killed"
    finished = len(list(work.glob("*/stage-0/*.done.json")))
    assert 3 <= finished < 27
    assert [r.status for r in hub.runs.recent(kind="data.process")] == ["abandoned"]
    (left,) = fsck(hub).leftovers  # the killed run's work, resumable, listed for gc
    assert (left.what, left.live, Path(left.path).parent) == ("resumable work", False, work)
    resumed = _run([*args, "--resume"], env)
    assert resumed["resumed_shards"] == finished and not list(work.glob("*"))  # work folder cleaned up
    fresh = _run([*args[:-1], "--json"], env)
    assert fresh["resumed_shards"] == 0
    assert fresh["version"]["digest"] == resumed["version"]["digest"]  # type: ignore[index]
    assert fresh["reused"] is True  # identical content: the resumed run already stored it


@pytest.mark.slow
def test_ctrl_c_stops_the_workers_and_exits_130(hub: Hub, fmstack_home: Path, tmp_path: Path) -> None:
    path = write_csv(tmp_path / "data.csv", synthetic_rows(5000))
    ingest(hub, IngestSpec(name="acme/raw", paths=[str(path)], shard_rows=250))
    spec = tmp_path / "spec.yaml"
    spec.write_text(SPEC)
    env = {**os.environ, "FMSTACK_HOME": str(fmstack_home)}
    child = subprocess.Popen(
        [FMSTACK, "data", "process", str(spec), "--workers", "2"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group, as a terminal's foreground job
        # ... with Ctrl-C's default action, as in a terminal: a test run started in the background by a
        # shell without job control ignores SIGINT, and a child would inherit that and never stop.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    work = fmstack_home / "work"
    deadline = time.monotonic() + 60
    while not list(work.glob("*/stage-0/*.done.json")) and time.monotonic() < deadline:
        time.sleep(0.02)
    os.killpg(child.pid, signal.SIGINT)  # Ctrl-C: the whole group, workers included
    _, err = child.communicate(timeout=30)
    assert child.returncode == 130, err
    assert "interrupted" in err and "Traceback" not in err
    deadline = time.monotonic() + 10
    while _group_alive(child.pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _group_alive(child.pid), "worker processes outlived the interrupted run"
    assert [r.repo for r in hub.ls()] == ["acme/raw"]  # nothing half-published
    (run,) = hub.runs.recent(kind="data.process")  # recorded from the start, closed by the interrupt
    assert run.status == "failed" and run.spec["error"] == "interrupted (Ctrl-C)"
    (left,) = gc(hub).leftovers  # its resumable work, removed once the process is gone
    assert left.what == "resumable work" and not Path(left.path).exists()


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True
