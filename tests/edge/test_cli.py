"""``fmstack edge`` from the command line: help, and the errors a user meets first (exit 1, a message
saying what to do)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fmstack.cli.main import main


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_help_and_keys_init(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FMSTACK_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("FMSTACK_HUB_URL", raising=False)
    code, out, _ = run(capsys, "edge", "--help")
    assert code == 0 and all(word in out for word in ("keys", "publish", "devices", "rollback"))
    code, out, _ = run(capsys, "edge", "keys", "init", "--json")
    assert code == 0
    made = json.loads(out)
    assert Path(made["trust_anchor"]) == tmp_path / "home" / "edge" / "keys" / "roots" / "1.root.json"
    code, _, err = run(capsys, "edge", "keys", "init")
    assert code == 1 and "already exist" in err


def test_publish_needs_a_hub_server_and_an_onnx_version(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, live_hub: object
) -> None:
    keys = str(tmp_path / "keys")
    assert run(capsys, "edge", "keys", "init", "--keys", keys)[0] == 0
    code, _, err = run(capsys, "edge", "publish", "acme/x", "--channel", "Bad Name", "--keys", keys)
    assert code == 1 and "bad channel name" in err
    code, _, err = run(
        capsys, "edge", "publish", "acme/x", "--channel", "stable", "--rollout", "150%", "--keys", keys
    )
    assert code == 1 and "0 to 100" in err
    pytorch = tmp_path / "pytorch"
    pytorch.mkdir()
    (pytorch / "fmstack.json").write_text('{"format": "pytorch", "task": "classification", "labels": ["a"]}')
    live_hub.hub.push("acme/torch", pytorch, "model")  # type: ignore[attr-defined]
    code, _, err = run(capsys, "edge", "publish", "acme/torch:1", "--channel", "stable", "--keys", keys)
    assert code == 1 and "not an ONNX version" in err and "fmstack compress" in err
    monkeypatch.delenv("FMSTACK_HUB_URL")
    code, _, err = run(capsys, "edge", "devices", "--channel", "stable")
    assert code == 1 and "--hub URL" in err
