"""Human output read by a file or another program: whole lines and whole refs, not a terminal's 80
columns with cells cut by an ellipsis; cards come out as their Markdown text."""

from __future__ import annotations

from pathlib import Path

import pytest

from fmstack.cli.main import main
from fmstack.hub import Hub
from tests.hub.folders import make_folder

LONG = "acme/a-model-name-long-enough-that-two-of-them-do-not-fit-in-eighty-columns"


def test_runs_ls_and_hub_info_keep_whole_refs_in_a_pipe(
    hub: Hub, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    card = "---\nlicense: mit\n---\n# Title\n\nSome *text*.\n"
    ref = hub.push(LONG, make_folder(tmp_path / "m", {"config.json": "{}"}), "model", card=card).ref
    other = hub.push(LONG + "-2", make_folder(tmp_path / "n", {"config.json": "{}"}), "model").ref
    hub.runs.start("eval", {}, inputs=[ref, other])
    assert main(["runs", "ls"]) == 0
    out = capsys.readouterr().out
    assert f"{ref}, {other}" in out and "…" not in out
    assert main(["hub", "card", ref]) == 0
    out = capsys.readouterr().out
    assert "# Title\n\nSome *text*." in out  # the Markdown itself, as written
