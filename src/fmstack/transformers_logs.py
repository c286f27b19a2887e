"""Quieting transformers' own reporting (log notes, "Loading weights" bars) for one call.

Loading a model makes transformers write to stderr: progress bars, and notes such as "newly
initialised head" that are expected when fine-tuning. Its logging is process-wide, so the quiet is
scoped to the call that loads: a caller's own loads (a notebook, a script embedding fmstack) keep
what it chose. A load that fails still raises.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def quiet_transformers() -> Iterator[None]:
    """transformers logs errors only and shows no progress bars inside the block; restored after."""
    from transformers.utils import logging as hf_logging  # heavy: only once a load is under way

    verbosity = hf_logging.get_verbosity()
    bars = hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()  # type: ignore[no-untyped-call]
    hf_logging.disable_progress_bar()  # type: ignore[no-untyped-call]
    try:
        yield
    finally:
        hf_logging.set_verbosity(verbosity)
        if bars:
            hf_logging.enable_progress_bar()  # type: ignore[no-untyped-call]
