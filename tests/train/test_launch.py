"""2-process gloo DDP through torchrun equals 1 process with the same global batch."""

from __future__ import annotations

from pathlib import Path

import torch
from safetensors.torch import load_file

from fmstack.hub import Hub
from fmstack.train.run import train
from fmstack.train.spec import parse_spec
from tests.train.conftest import equivalence_spec, push_classification


def test_two_process_ddp_equals_one_process(hub: Hub, tiny_bert: str, tmp_path: Path) -> None:
    data = push_classification(hub, tmp_path, n_train=64)
    common = equivalence_spec(tiny_bert, data)
    one = train(hub, parse_spec({**common, "batch_size": 8, "output": "test/one"}))
    two = train(hub, parse_spec({**common, "batch_size": 4, "nproc": 2, "output": "test/two"}))
    assert two.steps == one.steps == 4
    a = load_file(str(hub.checkout(one.output.ref) / "model.safetensors"))
    b = load_file(str(hub.checkout(two.output.ref) / "model.safetensors"))
    moved = load_file(str(hub.checkout(tiny_bert) / "model.safetensors"))
    for name in a:
        assert torch.allclose(a[name], b[name], atol=1e-5), name
    # the runs trained (so equality is not trivial): encoder weights moved from the base
    key = next(k for k in moved if k.endswith("layer.0.attention.self.query.weight"))
    trained = next(k for k in a if k.endswith("layer.0.attention.self.query.weight"))
    assert not torch.allclose(a[trained], moved[key])
    assert hub.runs.get(two.run_id).status == "succeeded"
