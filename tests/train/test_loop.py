"""The loop's correctness guarantees: accumulation equivalence and exact resume after SIGKILL."""

from __future__ import annotations

import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from fmstack.cli.main import main
from fmstack.hub import Hub
from tests.train.conftest import fit, push_classification, weights


@pytest.mark.parametrize("method", ["full", "lora"])
def test_gradient_accumulation_1x32_equals_2x16_equals_4x8(
    hub: Hub, tiny_bert: str, tmp_path: Path, method: str
) -> None:
    data = push_classification(hub, tmp_path, n_train=96)
    runs = []
    for batch, accum in ((32, 1), (16, 2), (8, 4)):
        _, result = fit(
            hub,
            tmp_path / f"ck{batch}",
            task="classification",
            method=method,
            base=tiny_bert,
            data=data,
            batch_size=batch,
            grad_accum=accum,
            max_steps=3,
            lr=1e-2,
            seed=3,
        )
        runs.append((result.history, weights(result.model)))
    (h1, w1), *others = runs
    for h, w in others:
        assert [s["loss"] for s in h] == pytest.approx([s["loss"] for s in h1], abs=1e-5)
        for name, value in w1.items():
            assert torch.allclose(w[name], value, atol=1e-5, rtol=0), name
    # and the runs really trained: weights moved from the base
    assert h1[-1]["loss"] != h1[0]["loss"]


def _latest_step(root: Path) -> int:
    done = [int(p.name.split("-")[1]) for p in root.glob("step-*") if (p / "state.json").is_file()]
    return max(done, default=0)


@pytest.mark.parametrize("extra", [[], ["--ema", "0.9"]], ids=["plain", "ema"])
def test_resume_after_sigkill_reaches_the_same_weights(
    hub: Hub, tiny_bert: str, tmp_path: Path, extra: list[str]
) -> None:
    data = push_classification(hub, tmp_path, n_train=256)
    common = [
        "train",
        "finetune",
        "--base",
        tiny_bert,
        "--data",
        data,
        "--method",
        "lora",
        "-b",
        "8",
        "--max-steps",
        "60",
        "--seed",
        "5",
        "--json",
        *extra,
    ]
    assert main([*common, "--output", "test/straight", "--checkpoint-dir", str(tmp_path / "straight")]) == 0

    killed_dir = tmp_path / "killed"
    args = [*common, "--output", "test/resumed", "--checkpoint-dir", str(killed_dir), "--save-every", "2"]
    exe = Path(sys.executable).parent / "fmstack"
    proc = subprocess.Popen(
        [str(exe), *args], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=os.environ.copy()
    )
    deadline = time.monotonic() + 120
    while _latest_step(killed_dir) < 6 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    killed_at = _latest_step(killed_dir)
    assert 6 <= killed_at < 60, f"the run was not killed mid-way (last checkpoint {killed_at})"

    assert main([*args, "--resume"]) == 0
    run = hub.runs.get(hub.resolve("test/resumed").run_id or 0)
    assert run.spec["result"]["resumed_from"] >= killed_at
    straight = load_file(str(hub.checkout("test/straight") / "adapter_model.safetensors"))
    resumed = load_file(str(hub.checkout("test/resumed") / "adapter_model.safetensors"))
    assert straight.keys() == resumed.keys()
    for name in straight:
        assert torch.equal(straight[name], resumed[name]), name


def test_early_stopping_keeps_the_best_evaluated_weights(
    hub: Hub, tiny_bert: str, topics: str, tmp_path: Path
) -> None:
    # A learning rate this large makes evaluations worsen quickly: the loop must stop and return the best.
    _, result = fit(
        hub, tmp_path / "ck", task="classification", method="full", base=tiny_bert, data=topics,
        batch_size=8, epochs=20, lr=0.5, eval_every=1, early_stopping=2, seed=1,
    )  # fmt: skip
    evals = {h["step"]: h["eval"]["accuracy"] for h in result.history if "eval" in h}
    assert result.steps < 160  # stopped early
    assert result.best_step is not None and evals[result.best_step] == max(evals.values())
    assert result.final["accuracy"] == pytest.approx(evals[result.best_step])


def test_bf16_autocast_trains_on_cpu(hub: Hub, tiny_bert: str, topics: str, tmp_path: Path) -> None:
    _, result = fit(
        hub, tmp_path / "ck", task="classification", method="lora", base=tiny_bert, data=topics,
        batch_size=8, max_steps=3, precision="bf16", device="cpu",
    )  # fmt: skip
    losses = [h["loss"] for h in result.history]
    assert len(losses) == 3 and all(math.isfinite(x) for x in losses)
    assert result.mfu is not None and 0 < result.mfu < 1
    # weights stay fp32: autocast only lowers the matmuls
    assert all(p.dtype == torch.float32 for p in result.model.parameters())
