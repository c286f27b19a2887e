"""Spec and card files named on the command line: what is refused, and how (fmstack/textfile.py)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from fmstack.errors import InvalidInput
from fmstack.textfile import read_user_text


def test_utf8_with_or_without_a_byte_order_mark_is_read(tmp_path: Path) -> None:
    path = tmp_path / "spec.yaml"
    path.write_bytes(b"\xef\xbb\xbftask: caf\xc3\xa9\n")
    assert read_user_text(path, "training spec") == "task: café\n"


def test_a_named_pipe_is_refused_instead_of_read_for_ever(tmp_path: Path) -> None:
    fifo = tmp_path / "card.md"
    os.mkfifo(fifo)
    with pytest.raises(InvalidInput, match="is not a regular file .*: give the card file"):
        read_user_text(fifo, "card file")


def test_a_long_path_is_quoted_clipped(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match=r"no training spec at '.*\.\.\. \(\d+ more characters\)': check"):
        read_user_text(tmp_path / ("x" * 250), "training spec")
