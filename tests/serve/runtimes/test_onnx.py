"""How the ONNX runtime spends its compute threads (the runtime itself is in the registry contract)."""

from __future__ import annotations

import pytest

from fmstack.serve.runtimes.onnx import split_threads


@pytest.mark.parametrize(("threads", "split"), [(1, (1, 1)), (2, (2, 1)), (3, (2, 1)), (8, (2, 4))])
def test_threads_go_to_batches_side_by_side_before_threads_within_a_batch(
    threads: int, split: tuple[int, int]
) -> None:
    assert split_threads(threads) == split
