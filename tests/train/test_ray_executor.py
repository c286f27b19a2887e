"""``--executor ray`` (Ray Train) reaches the same weights as torchrun DDP with the same global batch.

Starting a local Ray instance takes minutes on a busy 2-core machine, beyond this package's test-time
budget, so this runs only with FMSTACK_TEST_RAY=1 (and the ray extra installed).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from fmstack.hub import Hub
from fmstack.train.run import train
from fmstack.train.spec import parse_spec
from tests.train.conftest import equivalence_spec, push_classification

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        os.environ.get("FMSTACK_TEST_RAY") != "1", reason="set FMSTACK_TEST_RAY=1 to start Ray"
    ),
]


def test_ray_train_equals_one_process(hub: Hub, tiny_bert: str, tmp_path: Path) -> None:
    pytest.importorskip("ray.train")
    data = push_classification(hub, tmp_path, n_train=64)
    common = equivalence_spec(tiny_bert, data)
    one = train(hub, parse_spec({**common, "batch_size": 8, "output": "test/one"}))
    on_ray = train(
        hub, parse_spec({**common, "batch_size": 4, "nproc": 2, "executor": "ray", "output": "test/ray"})
    )
    a = load_file(str(hub.checkout(one.output.ref) / "model.safetensors"))
    b = load_file(str(hub.checkout(on_ray.output.ref) / "model.safetensors"))
    for name in a:
        assert torch.allclose(a[name], b[name], atol=1e-5), name
