"""2-process gloo DDP through torchrun equals 1 process with the same global batch."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch
from safetensors.torch import load_file

from fmstack.errors import Unavailable
from fmstack.hub import Hub
from fmstack.train import launch
from fmstack.train.launch import rank_failure
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


def test_a_killed_or_crashed_rank_is_a_typed_error_with_the_way_out() -> None:
    killed = rank_failure("torchrun", -9, "...\nSignal 9 (SIGKILL) received by PID 4242\n")
    assert isinstance(killed, Unavailable)
    assert "torchrun failed (exit code -9)" in str(killed) and "try a smaller --batch-size" in str(killed)
    crashed = rank_failure(
        "Ray Train", None, "noise\nTraceback (most recent call last):\n  boom\nValueError: x"
    )
    assert str(crashed).startswith("Ray Train failed; a training process reported:\nTraceback")
    assert str(crashed).endswith("ValueError: x\ntrain in one process (--nproc 1) to see the error there")


@pytest.mark.slow
def test_a_rank_that_crashes_fails_the_run_with_its_own_error(
    hub: Hub, tiny_bert: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A real torchrun whose rank dies of a non-fmstack error (here: a job file it cannot parse).
    real = launch.write_job

    def broken_job(*args: Any) -> tuple[Path, Path]:
        job, result = real(*args)
        job.write_text(json.dumps({**json.loads(job.read_text()), "spec": {"task": "nope"}}))
        return job, result

    monkeypatch.setattr(launch, "write_job", broken_job)
    data = push_classification(hub, tmp_path, n_train=16)
    spec = parse_spec({**equivalence_spec(tiny_bert, data), "nproc": 2, "output": "test/crash"})
    with pytest.raises(Unavailable, match="(?s)torchrun failed .*ValidationError") as caught:
        train(hub, spec)
    message = str(caught.value)
    assert message.count("Traceback") == 1 and "train in one process (--nproc 1)" in message
    (run,) = hub.runs.recent()
    assert run.status == "failed" and run.spec["error"].startswith("Unavailable: torchrun failed")
