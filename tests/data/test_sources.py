from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from fmstack.data.sources import check_split_name, detect, expand, find_bad_utf8, split_from_name
from fmstack.errors import InvalidInput, NotFound


@pytest.mark.parametrize(
    ("name", "split"),
    [
        ("train.csv", "train"),
        ("my-train-01.jsonl.gz", "train"),
        ("dev.tsv", "validation"),
        ("validation.parquet", "validation"),
        ("data_test.csv", "test"),
        ("constrained.csv", None),
        ("latest.csv", None),
        ("train_and_test.csv", None),
    ],
)
def test_split_from_name_matches_whole_keywords(name: str, split: str | None) -> None:
    assert split_from_name(Path(name)) == split


def test_detect_format_and_compression() -> None:
    assert detect(Path("a.csv.gz")) == ("csv", "gzip")
    assert detect(Path("a.jsonl.zst")) == ("jsonl", "zstd")
    assert detect(Path("a.TXT")) == ("text", None)
    assert detect(Path("weird.data"), "tsv") == ("tsv", None)
    with pytest.raises(InvalidInput, match="--format"):
        detect(Path("weird.data"))
    with pytest.raises(InvalidInput, match="Parquet"):
        detect(Path("a.parquet.gz"))


def test_find_bad_utf8_reports_the_offset_in_the_decompressed_stream(tmp_path: Path) -> None:
    data = ("é" * 700_000).encode() + b"\xff" + b"tail"  # the bad byte sits past the first 1 MiB chunk
    (tmp_path / "a.txt").write_bytes(data)
    with gzip.open(tmp_path / "a.txt.gz", "wb") as f:
        f.write(data)
    assert find_bad_utf8(tmp_path / "a.txt", None) == 1_400_000
    assert find_bad_utf8(tmp_path / "a.txt.gz", "gzip") == 1_400_000
    (tmp_path / "ok.txt").write_bytes("fine ✓".encode())
    assert find_bad_utf8(tmp_path / "ok.txt", None) is None


def test_expand_errors_and_globs(tmp_path: Path) -> None:
    (tmp_path / "a.csv").write_text("text\nx\n")
    (tmp_path / "b.csv").write_text("text\ny\n")
    assert [p.name for p in expand([str(tmp_path / "*.csv")])] == ["a.csv", "b.csv"]
    with pytest.raises(NotFound, match="no file matches"):
        expand([str(tmp_path / "*.jsonl")])
    with pytest.raises(NotFound):
        expand([str(tmp_path / "missing.csv")])


def test_split_names_are_checked() -> None:
    assert check_split_name("dev") == "validation"
    with pytest.raises(InvalidInput, match="reserved"):
        check_split_name("rejected")
    with pytest.raises(InvalidInput):
        check_split_name("Bad Name")
