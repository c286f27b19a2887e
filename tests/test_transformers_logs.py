"""transformers is quiet only inside the calls that load models; the process keeps its own setting."""

from __future__ import annotations

import subprocess
import sys

import pytest
from transformers.utils import logging as hf_logging

from fmstack.transformers_logs import quiet_transformers


def test_quiet_inside_the_block_and_restored_after_even_on_failure() -> None:
    hf_logging.set_verbosity_info()  # type: ignore[no-untyped-call]
    hf_logging.enable_progress_bar()  # type: ignore[no-untyped-call]
    try:
        with pytest.raises(RuntimeError), quiet_transformers():
            assert hf_logging.get_verbosity() == hf_logging.ERROR
            assert not hf_logging.is_progress_bar_enabled()
            raise RuntimeError("a load failed")
        assert hf_logging.get_verbosity() == hf_logging.INFO and hf_logging.is_progress_bar_enabled()
    finally:
        hf_logging.set_verbosity_warning()  # type: ignore[no-untyped-call]


def test_importing_training_changes_nothing() -> None:
    """train/prepare.py used to set ERROR and turn bars off at import, for the whole process."""
    probe = (
        "import fmstack.train.prepare, fmstack.train.inference\n"
        "from transformers.utils import logging as l\n"
        "print(l.get_verbosity(), l.is_progress_bar_enabled())"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert out.split() == [str(hf_logging.WARNING), "True"]
