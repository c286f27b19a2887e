"""The `fmstack hub` commands: exit codes, --json output, one-line errors without tracebacks."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from fmstack.cli import main as cli_main
from fmstack.hub import Hub
from tests.hub.folders import make_folder


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = cli_main.main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def run_json(capsys: pytest.CaptureFixture[str], *args: str) -> object:
    code, out, err = run(capsys, *args, "--json")
    assert code == 0, err
    return json.loads(out)


def test_push_pull_tag_info_roundtrip(
    fmstack_home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = make_folder(tmp_path / "src", {"config.json": "{}", "w.bin": "weights"})
    pushed = run_json(
        capsys, "hub", "push", "acme/m", str(src), "--kind", "model", "-m", "first", "--alias", "staging"
    )
    assert isinstance(pushed, dict) and pushed["number"] == 1 and pushed["message"] == "first"
    assert run_json(capsys, "hub", "tag", "acme/m:1", "production")["number"] == 1  # type: ignore[index]
    info = run_json(capsys, "hub", "info", "acme/m@production")
    assert isinstance(info, dict) and info["aliases"] == ["production", "staging"]
    assert [f["path"] for f in info["files"]] == ["config.json", "w.bin"]
    pulled = run_json(capsys, "hub", "pull", "acme/m@production", str(tmp_path / "out"))
    assert (tmp_path / "out/w.bin").read_text() == "weights" and pulled["version"]["number"] == 1  # type: ignore[index]
    listed = run_json(capsys, "hub", "ls", "--kind", "model")
    assert listed == [
        {
            **listed[0],
            "repo": "acme/m",
            "versions": 1,
            "latest": 1,
            "aliases": {"production": 1, "staging": 1},
        }  # type: ignore[index]
    ]
    history = run_json(capsys, "hub", "history", "acme/m")
    assert [(e["alias"], e["new"]) for e in history] == [("staging", 1), ("production", 1)]  # type: ignore[union-attr,index]
    code, out, _ = run(capsys, "hub", "info", "acme/m")
    assert code == 0 and "acme/m:1" in out and "w.bin" in out


def test_user_errors_exit_1_with_one_line_and_no_traceback(
    fmstack_home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for args, message in [
        (["hub", "info", "nonsense"], "bad ref 'nonsense'"),
        (["hub", "info", "acme/missing"], "no repo named 'acme/missing'"),
        (["hub", "push", "acme/m", str(tmp_path / "nope"), "--kind", "model"], "no such file or folder"),
        (["hub", "push", "acme/m", str(tmp_path), "--kind", "weights"], "'weights' is not one of"),
        (["hub", "tag", "acme/m:1"], "Missing argument"),
    ]:
        code, _, err = run(capsys, *args)
        assert code == 1, args
        assert message in err and "Traceback" not in err


def test_internal_errors_exit_2(
    fmstack_home: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(self: Hub, *args: object, **kwargs: object) -> None:
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(Hub, "ls", broken)
    code, _, err = run(capsys, "hub", "ls")
    assert code == 2 and "internal error: RuntimeError: disk on fire" in err and "--debug" in err


def test_fsck_exits_1_on_corruption_and_gc_cleans_orphans(
    fmstack_home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run_json(capsys, "hub", "push", "acme/a", str(make_folder(tmp_path / "a", {"x": "1"})), "--kind", "model")
    run_json(capsys, "hub", "push", "acme/b", str(make_folder(tmp_path / "b", {"y": "2"})), "--kind", "model")
    run_json(capsys, "hub", "rm", "acme/b")
    report = run_json(capsys, "hub", "fsck")
    assert isinstance(report, dict) and report["ok"] and len(report["orphans"]) == 1
    assert run_json(capsys, "hub", "gc", "--dry-run")["dry_run"] is True  # type: ignore[index]
    assert len(run_json(capsys, "hub", "gc")["removed"]) == 1  # type: ignore[index,arg-type]
    blob = next((fmstack_home / "blobs/sha256").rglob("*"), None)
    for path in (fmstack_home / "blobs/sha256").rglob("*"):
        if path.is_file():
            path.write_text("garbage")
    assert blob is not None
    code, out, _ = run(capsys, "hub", "fsck")
    assert code == 1 and "corrupt" in out
    code, _, err = run(capsys, "hub", "pull", "acme/a", str(tmp_path / "out"))
    assert code == 1 and "is corrupt" in err and not (tmp_path / "out/x").exists()


def test_rm_refusal_and_card_edit(
    fmstack_home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run_json(
        capsys,
        "hub",
        "push",
        "acme/a",
        str(make_folder(tmp_path / "a", {"x": "1"})),
        "--kind",
        "model",
        "--alias",
        "production",
    )
    code, _, err = run(capsys, "hub", "rm", "acme/a:1")
    assert code == 1 and "alias 'production' points at version 1" in err and "--force" in err
    card = tmp_path / "card.md"
    card.write_text("---\nlicense: mit\n---\n# A\n")
    assert run_json(capsys, "hub", "card", "acme/a", "--edit", str(card))["card"] == card.read_text()  # type: ignore[index]
    card.write_text("---\ndatasets: 3\n---\n")
    code, _, err = run(capsys, "hub", "card", "acme/a", "--edit", str(card))
    assert code == 1 and "datasets" in err
    card.write_bytes("---\nlicense: mit\n---\n# Caf\xe9\n".encode("cp1252"))
    code, _, err = run(capsys, "hub", "card", "acme/a", "--edit", str(card))
    assert code == 1 and "not UTF-8 text (byte 0xe9 on line 4); save the card file as UTF-8" in err
    code, _, err = run(capsys, "hub", "card", "acme/a", "--edit", str(tmp_path / "none.md"))
    assert code == 1 and "no card file at" in err
    lineage = run_json(capsys, "hub", "lineage", "acme/a")
    assert lineage == {
        "ref": "acme/a:1",
        "nodes": [{"ref": "acme/a:1", "kind": "model", "run_id": None, "run_kind": None}],
        "edges": [],
    }


def test_version_and_help_from_a_real_process(fmstack_home: Path) -> None:
    version = subprocess.run(
        [sys.executable, "-m", "fmstack", "--version"], capture_output=True, text=True, check=True
    )
    assert version.stdout.startswith("fmstack ")
    help_text = subprocess.run(
        [sys.executable, "-m", "fmstack", "--help"], capture_output=True, text=True, check=True
    )
    assert "hub" in help_text.stdout
    bad = subprocess.run(
        [sys.executable, "-m", "fmstack", "hub", "info", "x"], capture_output=True, text=True
    )
    assert bad.returncode == 1 and "bad ref" in bad.stderr and "Traceback" not in bad.stderr


def test_runs_commands(fmstack_home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with Hub.open() as hub:
        run_id = hub.runs.start("train", {"lr": 0.01})
        hub.runs.log_metrics(run_id, 1, {"loss": 1.5})
        hub.runs.append_log(run_id, "epoch 1")
        hub.push("acme/out", make_folder(tmp_path / "o", {"w": "1"}), "model", run_id=run_id)
        hub.runs.finish(run_id)
    listed = run_json(capsys, "runs", "ls")
    assert isinstance(listed, list) and listed[0]["id"] == run_id and listed[0]["outputs"] == ["acme/out:1"]
    shown = run_json(capsys, "runs", "show", str(run_id))
    assert shown["run"]["spec"] == {"lr": 0.01} and shown["metrics"][0]["value"] == 1.5  # type: ignore[index]
    code, out, _ = run(capsys, "runs", "logs", str(run_id))
    assert code == 0 and out == "epoch 1\n"
    code, _, err = run(capsys, "runs", "show", "999")
    assert code == 1 and "no run 999" in err


def test_user_text_is_printed_as_is_never_as_rich_markup(
    fmstack_home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(capsys, "hub", "info", "acme/[/b]")  # a closing tag crashed Rich's markup parser
    assert code == 1 and "acme/[/b]" in err
    src = make_folder(tmp_path / "src", {"[red]w.bin": "weights"})
    assert run(capsys, "hub", "push", "acme/m", str(src), "--kind", "model")[0] == 0
    code, out, _ = run(capsys, "hub", "push", "acme/m", str(src), "--kind", "model")  # the same bytes
    assert code == 0 and "unchanged, already acme/m:1" in out
    code, _, err = run(capsys, "hub", "push", "badname", str(src), "--kind", "model")
    assert code == 1 and "bad repo name 'badname'" in err
    code, out, _ = run(capsys, "hub", "info", "acme/m")
    assert code == 0 and "[red]w.bin" in out
    with Hub.open() as hub:
        hub.push("acme/c", src, "model", card="---\ntags: ['[/]x']\n---\nA card.\n")
    code, out, _ = run(capsys, "hub", "info", "acme/c")
    assert code == 0 and "[/]x" in out


def test_an_unusable_hub_folder_or_database_is_a_user_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "a-file").write_text("")
    monkeypatch.setenv("FMSTACK_HOME", str(tmp_path / "a-file"))
    code, _, err = run(capsys, "hub", "ls")
    assert code == 1 and "cannot use" in err and "set FMSTACK_HOME to a folder you can write to" in err
    (tmp_path / "home").mkdir()
    (tmp_path / "home" / "fmstack.db").write_text("not a database")
    monkeypatch.setenv("FMSTACK_HOME", str(tmp_path / "home"))
    code, _, err = run(capsys, "hub", "ls")
    assert code == 1 and "file is not a database; move the file aside" in err
    monkeypatch.setenv("FMSTACK_DATABASE_URL", "postgresql+psycopg://u:secret@127.0.0.1:1/db")
    code, _, err = run(capsys, "hub", "ls")
    assert code == 1 and "cannot open the hub database postgresql+psycopg://u:***@127.0.0.1:1/db" in err
    assert "secret" not in err and "check FMSTACK_DATABASE_URL" in err


def test_the_hub_flag_selects_a_server_for_one_invocation_only(
    fmstack_home: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """``--hub URL`` must not outlive its command in a process that runs several (tests, scripts)."""
    import os

    monkeypatch.delenv("FMSTACK_HUB_URL", raising=False)
    code, _, err = run(capsys, "--hub", "http://127.0.0.1:9", "hub", "ls")
    assert code == 1 and "cannot reach the hub server http://127.0.0.1:9" in err
    assert "FMSTACK_HUB_URL" not in os.environ
    assert run(capsys, "hub", "ls")[0] == 0  # the next command uses the local hub again
