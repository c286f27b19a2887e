from __future__ import annotations

import pytest

from fmstack.errors import Unsupported
from fmstack.train.precision import check_precision, pick_device


def test_fp16_on_cpu_is_refused_with_a_way_out() -> None:
    with pytest.raises(Unsupported, match="bf16"):
        check_precision("fp16", "cpu")


def test_bf16_and_fp32_are_fine_on_cpu() -> None:
    assert check_precision("bf16", "cpu") == "bf16"
    assert check_precision("no", "cpu") == "no"


def test_auto_device_on_this_machine_and_missing_cuda() -> None:
    import torch

    assert pick_device("auto") in ("cpu", "cuda", "mps")
    if not torch.cuda.is_available():
        with pytest.raises(Unsupported, match="no CUDA"):
            pick_device("cuda")
