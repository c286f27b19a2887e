"""The agent against the attacks of issue 15, each on a channel mirror an attacker controls: the update
is rejected with a clear log line and the current model keeps serving. Plus the good paths: install,
staged rollout, no downgrade, health-check failure, server down."""

from __future__ import annotations

import json
import logging
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from fmstack.edge.keys import KeyFolder, init_keys
from tests.edge.conftest import Mirror, agent_config

Started = Callable[..., object]


@pytest.fixture
def started(mirror: Mirror, versions: dict[str, Path], keys: KeyFolder, tmp_path: Path) -> object:
    """An agent serving bundle 1 (acme/cls:1) of the mirror's channel."""
    from fmstack_edge.agent import Agent

    mirror.publish(versions["cls"], "acme/cls:1")
    agent = Agent(agent_config(mirror.url, tmp_path / "device", keys))  # type: ignore[arg-type]
    agent.boot()
    assert agent.poll().startswith("installed bundle 1")
    return agent


def serving(agent: object) -> str:
    current = agent.served.get()  # type: ignore[attr-defined]
    assert current is not None
    assert current.model.predict(["ball goal"])[0].label  # it answers
    return str(current.version)


def rejected(agent: object, caplog: pytest.LogCaptureFixture, why: str) -> None:
    """The poll refused the update, said why on one log line, and bundle 1 still serves."""
    with caplog.at_level(logging.WARNING, logger="fmstack_edge.agent"):
        outcome = agent.poll()  # type: ignore[attr-defined]
    assert outcome.startswith("update rejected") and why in outcome, outcome
    assert any(why in r.message and "still serving bundle 1" in r.message for r in caplog.records)
    assert serving(agent) == "acme/cls:1"
    assert agent.state.version == 1  # type: ignore[attr-defined]


def test_a_tampered_model_byte(
    started: object, mirror: Mirror, versions: dict[str, Path], caplog: pytest.LogCaptureFixture
) -> None:
    mirror.publish(versions["cls2"], "acme/cls:2")
    model = mirror.target("model.onnx")
    data = bytearray(model.read_bytes())
    data[len(data) // 2] ^= 0xFF
    model.write_bytes(bytes(data))
    rejected(started, caplog, "does not match its signed hash")


def test_tampered_metadata(
    started: object, mirror: Mirror, versions: dict[str, Path], caplog: pytest.LogCaptureFixture
) -> None:
    mirror.publish(versions["cls2"], "acme/cls:2")
    path = mirror.base / "metadata" / "2.targets.json"
    raw = json.loads(path.read_text())
    target = next(t for p, t in raw["signed"]["targets"].items() if p.endswith("model.onnx"))
    target["length"] += 1  # what an attacker would change to slip in a bigger file
    path.write_text(json.dumps(raw))
    rejected(started, caplog, "not signed by the trusted keys")


def test_a_wrong_key(
    started: object,
    mirror: Mirror,
    versions: dict[str, Path],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    other = KeyFolder.at(tmp_path / "attacker-keys")
    init_keys(other)
    mirror.publish(versions["cls2"], "acme/cls:2", keys=other)
    rejected(started, caplog, "not signed by the trusted keys")


def test_expired_metadata(
    started: object, mirror: Mirror, versions: dict[str, Path], caplog: pytest.LogCaptureFixture
) -> None:
    mirror.publish(versions["cls2"], "acme/cls:2", expires_days=-1)
    rejected(started, caplog, "metadata expired")


def test_a_replay_of_older_metadata(
    started: object, mirror: Mirror, versions: dict[str, Path], caplog: pytest.LogCaptureFixture
) -> None:
    old = (mirror.base / "metadata" / "timestamp.json").read_bytes()  # version 1, still valid
    mirror.publish(versions["cls"], "acme/cls:1")  # bundle 2, same model: the device trusts timestamp 2
    assert started.poll().startswith("installed bundle 2")  # type: ignore[attr-defined]
    mirror.publish(versions["cls2"], "acme/cls:2")
    (mirror.base / "metadata" / "timestamp.json").write_bytes(old)  # freeze the device on old metadata
    with caplog.at_level(logging.WARNING, logger="fmstack_edge.agent"):
        outcome = started.poll()  # type: ignore[attr-defined]
    assert "older than what this device trusts" in outcome
    assert any("older than what this device trusts" in r.message for r in caplog.records)
    assert started.state.version == 2  # type: ignore[attr-defined]


def test_files_of_two_bundles_mixed(
    started: object, mirror: Mirror, versions: dict[str, Path], caplog: pytest.LogCaptureFixture
) -> None:
    bundle1_model = mirror.target("model.onnx").read_bytes()
    mirror.publish(versions["cls2"], "acme/cls:2")
    mirror.target("model.onnx").write_bytes(bundle1_model)  # bundle 1's model under bundle 2's path
    rejected(started, caplog, "does not match its signed hash")


def test_an_endless_or_oversized_download(
    started: object, mirror: Mirror, versions: dict[str, Path], caplog: pytest.LogCaptureFixture
) -> None:
    mirror.publish(versions["cls2"], "acme/cls:2")
    model = mirror.target("model.onnx")
    model.write_bytes(model.read_bytes() + b"\0" * 3_000_000)  # longer than its signed length
    rejected(started, caplog, "longer than its signed size")


def test_the_server_down(
    started: object, mirror: Mirror, keys: KeyFolder, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from fmstack_edge.agent import Agent

    shutil.rmtree(mirror.root / "api")  # the channel answers 404 ...
    rejected(started, caplog, "the server answered an error")
    started.shutdown()  # type: ignore[attr-defined]
    # ... or nothing listens at all (port 9, discard): a restarted agent still serves what it has.
    restarted = Agent(agent_config("http://127.0.0.1:9", tmp_path / "device", keys, timeout_s=1.0))  # type: ignore[arg-type]
    restarted.boot()
    with caplog.at_level(logging.WARNING, logger="fmstack_edge.agent"):
        outcome = restarted.poll()
    assert "unreachable" in outcome or "stalled" in outcome, outcome
    assert serving(restarted) == "acme/cls:1"


def test_a_bundle_failing_its_health_check(
    started: object, mirror: Mirror, versions: dict[str, Path], caplog: pytest.LogCaptureFixture
) -> None:
    # Signed correctly, but its golden outputs are another model's: the device refuses to switch.
    mirror.publish(versions["cls2"], "acme/cls:2", golden_from=versions["cls"])
    rejected(started, caplog, "health check")
    assert started.state.rejected == [2]  # type: ignore[attr-defined]
    assert started.poll() == "bundle 2 failed here before; waiting for a newer one"  # type: ignore[attr-defined]


def test_no_downgrade_and_staged_rollout(
    started: object, mirror: Mirror, versions: dict[str, Path], caplog: pytest.LogCaptureFixture
) -> None:
    from fmstack_edge.rollout import bucket

    place = bucket("device-1", "stable")
    mirror.publish(versions["cls2"], "acme/cls:2", rollout=place)  # just below this device's bucket
    assert "waits" in started.poll()  # type: ignore[attr-defined]
    mirror.publish(versions["cls2"], "acme/cls:2", rollout=place + 1)
    assert started.poll().startswith("installed bundle 3")  # type: ignore[attr-defined]
    mirror.bundle = 1  # new, validly signed metadata naming an older bundle version
    mirror.publish(versions["cls"], "acme/cls:1")
    with caplog.at_level(logging.WARNING, logger="fmstack_edge.agent"):
        outcome = started.poll()  # type: ignore[attr-defined]
    assert "lower than bundle 3 already accepted" in outcome
    assert serving(started) == "acme/cls:2"
