"""``fmstack server ...`` account commands: --json output, a token printed once, exit codes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fmstack.cli import main as cli_main


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = cli_main.main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_admin_users_orgs_members_and_tokens(fmstack_home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "server", "create-admin", "--name", "root", "--json")
    assert code == 0 and json.loads(out)["token"].startswith("fmk_")
    assert run(capsys, "server", "user", "add", "ann")[0] == 0
    assert run(capsys, "server", "org", "add", "acme")[0] == 0
    assert run(capsys, "server", "member", "add", "acme", "ann", "--role", "write")[0] == 0
    code, out, err = run(capsys, "server", "token", "create", "ann", "--scope", "read", "--expires-days", "7")
    token = out.strip()
    assert code == 0 and token.startswith("fmk_") and "shown once" in err
    code, out, _ = run(capsys, "server", "token", "ls", "ann", "--json")
    listed = json.loads(out)
    assert [t["scopes"] for t in listed] == [["read"]] and token not in out and listed[0]["expires_at"]
    code, out, _ = run(capsys, "server", "user", "ls", "--json")
    assert {u["name"]: u["members"] for u in json.loads(out)} == {"ann": {"acme": "write"}, "root": {}}
    assert run(capsys, "server", "token", "revoke", listed[0]["prefix"])[0] == 0
    code, out, _ = run(capsys, "server", "token", "ls", "ann", "--json")
    assert json.loads(out)[0]["revoked_at"] is not None
    assert run(capsys, "server", "member", "rm", "acme", "ann")[0] == 0


def test_mistakes_exit_1_with_the_way_out(fmstack_home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys, "server", "user", "add", "ann")[0] == 0
    code, _, err = run(capsys, "server", "user", "add", "ann")
    assert code == 1 and "taken" in err
    code, _, err = run(capsys, "server", "member", "add", "nope", "ann")
    assert code == 1 and "no organisation named 'nope'" in err
    code, _, err = run(capsys, "server", "token", "revoke", "abc")
    assert code == 1 and "token ls" in err


def test_audit_is_empty_on_a_new_hub(fmstack_home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "server", "audit", "--json")
    assert code == 0 and json.loads(out) == []


def test_visibility_is_set_from_the_server_cli_and_audited(
    fmstack_home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "config.json").write_text("{}")
    assert run(capsys, "hub", "push", "acme/m", str(src), "--kind", "model")[0] == 0
    assert run(capsys, "server", "visibility", "acme/m", "public")[0] == 0
    code, out, _ = run(capsys, "hub", "ls", "--json")
    assert json.loads(out)[0]["visibility"] == "public"
    code, out, _ = run(capsys, "server", "audit", "--json")
    assert [(e["action"], e["target"], e["source"]) for e in json.loads(out)] == [
        ("visibility", "acme/m", "cli")
    ]
    code, _, err = run(capsys, "server", "visibility", "acme/m", "secret")
    assert code == 1 and "public or private" in err


def test_local_only_commands_refuse_a_selected_remote_hub(
    fmstack_home: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("FMSTACK_HUB_URL", "http://127.0.0.1:9")  # nothing listens there
    for command in (("hub", "gc"), ("demo",), ("hub", "import-hf", "acme/m")):
        code, _, err = run(capsys, *command)
        assert code == 1 and "works on the local hub only" in err and "unset FMSTACK_HUB_URL" in err, command
    for command in (("runs", "ls"), ("data", "show", "acme/d")):  # remote-ready, but no server is there
        code, _, err = run(capsys, *command)
        assert code == 1 and "cannot reach the hub server http://127.0.0.1:9" in err, command
    monkeypatch.delenv("FMSTACK_HUB_URL")
    code, _, err = run(capsys, "--hub", "http://127.0.0.1:9", "hub", "import-builtin")
    assert code == 1 and "`fmstack hub import-builtin` works on the local hub only" in err
