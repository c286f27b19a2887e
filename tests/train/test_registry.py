"""The contract every registry entry keeps: for each method x task that makes sense, one training step,
save as a version, load it back through ``inference.load``, and get the same outputs."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from fmstack.errors import Unsupported
from fmstack.hub import Hub
from fmstack.train import registry
from fmstack.train.inference import load
from fmstack.train.merge import merge
from fmstack.train.publish import write_output
from fmstack.train.spec import METHODS_FOR_TASK
from tests.train.conftest import (
    fit,
    push_classification,
    push_pairs,
    push_text,
    push_tiny_bert,
    push_tiny_gpt2,
)

CASES = [(task, method) for task, methods in METHODS_FOR_TASK.items() for method in methods]


def test_every_registered_method_and_task_is_in_the_table() -> None:
    assert {m for _, m in CASES} == set(registry.METHODS)
    assert {t for t, _ in CASES} == set(registry.TASKS)


def _data(hub: Hub, root: Path, task: str) -> str:
    if task == "classification":
        return push_classification(hub, root, n_train=16, n_eval=8)
    if task == "embedding":
        return push_pairs(hub, root, n=16)
    return push_text(hub, root, n=16)


@pytest.mark.parametrize(("task", "method"), CASES)
def test_one_step_save_reload_same_outputs(hub: Hub, tmp_path: Path, task: str, method: str) -> None:
    base = push_tiny_gpt2(hub, tmp_path) if task == "clm" else push_tiny_bert(hub, tmp_path)
    data = _data(hub, tmp_path, task)
    loop, result = fit(
        hub,
        tmp_path / "ck",
        task=task,
        method=method,
        base=base,
        data=data,
        batch_size=8,
        max_steps=1,
        lr=1e-2,
        seed=7,
    )
    folder = tmp_path / "out"
    folder.mkdir()
    kind = write_output(loop.prep, result.model, folder, base, data)
    assert kind == ("adapter" if registry.METHODS[method].is_adapter else "model")
    loaded = load(hub, hub.push(f"test/{task}-{method}", folder, kind).ref)  # type: ignore[arg-type]
    assert loaded.task == task and not loaded.model.training

    spec_task = registry.TASKS[task]
    ctx = loop.ctx
    rows = [spec_task.finalize(r, (-1, i), ctx) for i, r in enumerate(loop.prep.eval_rows[:4])]
    batch = spec_task.collate(rows, ctx)
    result.model.eval()
    with torch.no_grad():
        expected = spec_task.outputs(result.model, batch, ctx)
        got = spec_task.outputs(loaded.model, batch, loaded.context())
    assert torch.allclose(expected, got, atol=1e-5), (task, method)

    # LoRA/IA3 fold into the base with the same outputs; adapters and prefixes refuse to
    if method in ("lora", "ia3") and task == "classification":
        merged = merge(loaded)
        assert merged.merged and type(merged.model).__name__.endswith("ForSequenceClassification")
        with torch.no_grad():
            assert torch.allclose(spec_task.outputs(merged.model, batch, ctx), got, atol=1e-5)
    if method in ("adapter", "prefix"):
        with pytest.raises(Unsupported, match="cannot be merged"):
            merge(loaded)
