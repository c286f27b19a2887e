"""Crashes: SIGKILL during a download and during the switch, and a new slot that keeps crashing the
agent; each time the agent comes back up on a working slot."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from fmstack.edge.keys import KeyFolder
from tests.edge.conftest import EDGE_SRC, Mirror, agent_config


def _agent_process(mirror: Mirror, folder: Path, keys: KeyFolder, log: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": str(EDGE_SRC)}
    args = ["--server", mirror.url, "--channel", "stable", "--dir", str(folder), "--device-id", "device-1"]
    args += ["--root", str(keys.roots / "1.root.json"), "--port", "0", "--poll", "0.2", "--threads", "1"]
    with open(log, "ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "fmstack_edge", "agent", *args], env=env, stdout=out, stderr=out
        )


def _served(log: Path, process: subprocess.Popen[bytes], ref: str, timeout_s: float = 60.0) -> None:
    """Wait until the agent's HTTP server answers with ``ref``."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        assert process.poll() is None, log.read_text()
        found = [line for line in log.read_text().splitlines() if "serving on http://" in line]
        if found:
            url = found[-1].rsplit(" ", 1)[-1]
            try:
                ready = httpx.get(f"{url}/healthz", timeout=2).json()
                if ref in ready.get("models", {}).values():
                    return
            except httpx.TransportError:
                pass
        time.sleep(0.1)
    raise AssertionError(f"the agent did not serve {ref} in {timeout_s} s: {log.read_text()[-3000:]}")


def _state(folder: Path) -> dict:  # type: ignore[type-arg]
    state: dict = json.loads((folder / "state.json").read_text())  # type: ignore[type-arg]
    return state


def test_sigkill_during_a_download(
    mirror: Mirror, versions: dict[str, Path], keys: KeyFolder, tmp_path: Path
) -> None:
    folder, log = tmp_path / "device", tmp_path / "agent.log"
    mirror.publish(versions["cls"], "acme/cls:1")
    first = _agent_process(mirror, folder, keys, log)
    try:
        _served(log, first, "acme/cls:1")
        mirror.hold, mirror.started = threading.Event(), threading.Event()
        mirror.hold.set()  # the next model download stalls after its first bytes
        mirror.publish(versions["cls2"], "acme/cls:2")
        assert mirror.started.wait(60), log.read_text()
        first.send_signal(signal.SIGKILL)
        first.wait()
    finally:
        first.kill()
    state = _state(folder)
    assert state["active"] == "a" and state["versions"] == {"a": 1} and state["running"]
    mirror.hold.clear()
    second = _agent_process(mirror, folder, keys, log)
    try:
        _served(log, second, "acme/cls:2")  # came up on slot a, then finished the update
    finally:
        second.send_signal(signal.SIGTERM)
        second.wait(30)
    state = _state(folder)
    assert state["active"] == "b" and state["highest"] == 2 and not state["running"]


def test_sigkill_during_the_switch(
    mirror: Mirror,
    versions: dict[str, Path],
    keys: KeyFolder,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The switch is one rename of state.json: killed before it, the old slot serves; after it, the new."""
    from fmstack_edge import slots
    from fmstack_edge.agent import Agent

    folder = tmp_path / "device"
    mirror.publish(versions["cls"], "acme/cls:1")
    agent = Agent(agent_config(mirror.url, folder, keys))  # type: ignore[arg-type]
    agent.boot()
    agent.poll()
    mirror.publish(versions["cls2"], "acme/cls:2")

    class Killed(BaseException):
        pass

    rename = os.replace

    def killed(src: str | os.PathLike[str], dst: str | os.PathLike[str]) -> None:
        if Path(src).name.startswith(".state.json"):  # SIGKILL between writing the new state and its rename
            raise Killed
        rename(src, dst)

    monkeypatch.setattr(slots.os, "replace", killed)
    with pytest.raises(Killed):
        agent.poll()
    monkeypatch.undo()
    assert list(folder.glob(".state.json.*"))  # the half-done write, as a killed agent leaves it
    restarted = Agent(agent_config(mirror.url, folder, keys))  # type: ignore[arg-type]
    restarted.boot()
    assert restarted.served.get().version == "acme/cls:1"  # type: ignore[union-attr]
    assert not list(folder.glob(".state.json.*"))
    assert restarted.poll().startswith("installed bundle 2")  # the next poll completes the update


def test_a_new_slot_that_keeps_crashing_is_rolled_back(
    mirror: Mirror, versions: dict[str, Path], keys: KeyFolder, tmp_path: Path
) -> None:
    from fmstack_edge.agent import Agent

    folder = tmp_path / "device"
    config = agent_config(mirror.url, folder, keys, max_crashes=2)
    mirror.publish(versions["cls"], "acme/cls:1")
    agent = Agent(config)  # type: ignore[arg-type]
    agent.boot()
    agent.poll()
    agent.confirm()
    agent.state.probation = None  # bundle 1 has served long enough
    mirror.publish(versions["cls2"], "acme/cls:2")
    assert agent.poll().startswith("installed bundle 2")
    for _crash in range(2):  # each agent "dies" without shutdown(): a crash on probation
        crashed = Agent(config)  # type: ignore[arg-type]
        crashed.boot()
    assert crashed.served.get().version == "acme/cls:1"  # type: ignore[union-attr]
    assert crashed.state.rejected == [2] and crashed.state.highest == 2
    assert crashed.poll() == "bundle 2 is current"  # never retried: the operator publishes bundle 3


def test_the_only_bundle_is_kept_even_if_it_crashes(
    mirror: Mirror, versions: dict[str, Path], keys: KeyFolder, tmp_path: Path
) -> None:
    from fmstack_edge.agent import Agent

    config = agent_config(mirror.url, tmp_path / "device", keys, max_crashes=1)
    mirror.publish(versions["cls"], "acme/cls:1")
    first = Agent(config)  # type: ignore[arg-type]
    first.boot()
    assert first.poll().startswith("installed bundle 1")
    crashed = Agent(config)  # type: ignore[arg-type]  # the first agent died on probation
    crashed.boot()
    assert crashed.served.get().version == "acme/cls:1"  # type: ignore[union-attr]
    assert crashed.state.probation is None and crashed.state.rejected == []
