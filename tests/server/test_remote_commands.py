"""``fmstack hub`` and ``fmstack runs`` against a real hub server print what they print against the
server's own local hub: the same --json, the same exit codes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fmstack.cli import main as cli_main
from tests.hub.folders import make_folder
from tests.server.conftest import RunningHub


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = cli_main.main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.slow
def test_hub_and_runs_commands_answer_alike_remotely_and_locally(
    hub_server: RunningHub,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    src = make_folder(tmp_path / "src", {"config.json": "{}", "w.safetensors": "weights"})
    monkeypatch.setenv("FMSTACK_HOME", str(tmp_path / "laptop"))
    monkeypatch.setenv("FMSTACK_HUB_TOKEN", hub_server.token)
    hub = ["--hub", hub_server.url]
    code, _out, err = run(capsys, *hub, "hub", "push", "admin/m", str(src), "--kind", "model", "--json")
    assert code == 0, err
    assert run(capsys, *hub, "hub", "tag", "admin/m:1", "prod")[0] == 0
    assert run(capsys, *hub, "hub", "pull", "admin/m@prod", str(tmp_path / "pulled"))[0] == 0
    assert (tmp_path / "pulled" / "w.safetensors").read_text() == "weights"
    commands = [
        ("hub", "ls", "--json"),
        ("hub", "info", "admin/m@prod", "--json"),
        ("hub", "history", "admin/m", "--json"),
        ("hub", "lineage", "admin/m:1", "--json"),
        ("runs", "ls", "--json"),
        ("hub", "info", "admin/none", "--json"),
        ("hub", "info", "bad ref", "--json"),
    ]
    remote = [run(capsys, *hub, *c) for c in commands]
    monkeypatch.setenv("FMSTACK_HOME", str(hub_server.home))  # the server's own hub, read locally
    monkeypatch.delenv("FMSTACK_HUB_URL", raising=False)
    local = [run(capsys, *c) for c in commands]
    for command, (r_code, r_out, r_err), (l_code, l_out, l_err) in zip(commands, remote, local, strict=True):
        assert (r_code, r_err) == (l_code, l_err), command
        assert (json.loads(r_out) if r_out else None) == (json.loads(l_out) if l_out else None), command
    assert remote[-2][0] == 1 and remote[-1][0] == 1  # a missing repo, a bad ref: the user's to fix
