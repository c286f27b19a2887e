"""A bad flag is refused before the heavy libraries load (they cost 10 s of CPU on a small machine):
checked in a fresh process, by what it imported, not by timing."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

HEAVY = ("torch", "transformers", "peft", "onnxruntime")
PROBE = """
import sys
from fmstack.cli.main import main
code = main(sys.argv[1:])
loaded = [m for m in {heavy!r} if m in sys.modules]
print(code, ",".join(loaded) or "-")
"""


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            ["train", "finetune", "--base", "a/b", "--data", "a/c", "--lr", "-1"],
            "lr: Input should be greater than 0",
        ),
        (["train", "pretrain", "--arch", "bert-tiny", "--data", "a/c", "--objective", "x"], "--objective"),
        (["compress", "a/b", "--quantize", "int4"], "quantize: Input should be 'none' or 'int8'"),
        (["compress", "a/b", "--static-calibration"], "static calibration needs --quantize int8"),
    ],
)
def test_a_bad_flag_is_refused_before_torch_is_imported(
    fmstack_home: Path, argv: list[str], message: str
) -> None:
    proc = subprocess.run(
        [sys.executable, "-c", PROBE.format(heavy=HEAVY), *argv],
        capture_output=True,
        text=True,
        check=False,
    )
    assert message in proc.stderr
    assert proc.stdout.split() == ["1", "-"]  # exit 1, and none of the heavy libraries loaded
