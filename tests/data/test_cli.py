"""``fmstack data`` end to end through the real CLI entry point."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fmstack.cli.main import main
from fmstack.hub import Hub

from .conftest import synthetic_rows, write_csv


def _json(capsys: pytest.CaptureFixture[str], argv: list[str]) -> dict[str, object]:
    assert main(argv) == 0
    return json.loads(capsys.readouterr().out)  # type: ignore[no-any-return]


def test_ingest_process_show_head(hub: Hub, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write_csv(tmp_path / "train.csv", synthetic_rows(50))
    (tmp_path / "test.csv").write_text("text,label\n[/] fine [bold]x,a\n,b\n")  # brackets: not markup
    out = _json(
        capsys, ["data", "ingest", str(path), str(tmp_path / "test.csv"), "--name", "acme/raw", "--json"]
    )
    assert out["rows"] == {"train": 65, "test": 1} and out["rejected"] == {"empty_text": 1}
    assert main(["data", "ingest", str(tmp_path / "*.csv"), "--name", "acme/raw"]) == 0  # human output
    assert "unchanged, already acme/raw:1" in capsys.readouterr().out
    spec = tmp_path / "spec.yaml"
    spec.write_text("input: acme/raw:1\noutput: acme/clean\nops:\n  - op: dedup_exact\n")
    out = _json(capsys, ["data", "process", str(spec), "--workers", "1", "--json"])
    assert out["ops"] == [{"op": "dedup_exact", "rows_in": 66, "rows_out": 56, "duplicates_removed": 10}]
    shown = _json(capsys, ["data", "show", "acme/clean", "--json"])
    assert shown["card"]["ops"][0]["duplicates_removed"] == 10  # type: ignore[index]
    rows = _json(capsys, ["data", "head", "acme/raw", "--split", "rejected", "-n", "5", "--json"])
    assert rows == [
        {
            "text": "",
            "reason": "empty_text",
            "detail": "text is empty or whitespace",
            "source": "test.csv",
            "line": 3,
        }
    ]
    assert main(["data", "show", "acme/clean"]) == 0 and "Processing" in capsys.readouterr().out
    assert main(["data", "head", "acme/clean", "-n", "2"]) == 0
    assert main(["data", "head", "acme/raw", "--split", "test"]) == 0
    assert "[/] fine [bold]x" in capsys.readouterr().out


def test_user_errors_exit_1_with_one_line(
    tmp_path: Path, fmstack_home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "spec.yaml"
    bad.write_text("input: a/b\nops:\n  - op: dedup_near\n    threshold: 2\n")
    assert main(["data", "process", str(bad)]) == 1
    err = capsys.readouterr().err
    assert "output: Field required" in err and "ops[0] (dedup_near).threshold" in err
    assert main(["data", "ingest", str(tmp_path / "none.csv"), "--name", "a/b"]) == 1
    assert main(["data", "ingest", str(bad)]) == 1  # no --name
    assert "--name" in capsys.readouterr().err
    assert main(["data", "ingest", str(bad), "--name", "a/b", "--max-rejected-fraction", "3"]) == 1
    assert "--max-rejected-fraction: Input should be less than or equal to 1" in capsys.readouterr().err


def test_a_spec_that_is_not_utf8_is_refused_with_the_fix(
    tmp_path: Path, fmstack_home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = tmp_path / "spec.yaml"
    spec.write_bytes("input: a/b\noutput: a/c\n# r\xe9sum\xe9\nops: []\n".encode("latin-1"))
    assert main(["data", "process", str(spec)]) == 1
    err = " ".join(capsys.readouterr().err.split())
    assert f"{spec}: not UTF-8 text (byte 0xe9 on line 3); save the processing spec as UTF-8" in err
    assert main(["data", "process", str(tmp_path)]) == 1
    assert "is a folder: give the processing spec file itself" in capsys.readouterr().err


def test_a_huge_one_line_csv_is_quoted_clipped(
    tmp_path: Path, fmstack_home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # One 2 MB line: "the column names" of a file without newlines, once echoed whole.
    (tmp_path / "train.csv").write_text("x" * 2_000_000)
    assert main(["data", "ingest", str(tmp_path / "train.csv"), "--name", "acme/line"]) == 1
    err = capsys.readouterr().err
    assert "cannot tell the text column" in err and "more characters)" in err and len(err) < 1000
    assert (
        main(["data", "ingest", str(tmp_path / "train.csv"), "--name", "a/b", "--text-column", "y" * 5000])
        == 1
    )
    err = capsys.readouterr().err
    assert "column 'yyy" in err and "(4,800 more characters)" in err and len(err) < 1000
