"""The contract every registry entry keeps: for each method x task its plugin declares, one training
step changes the weights the method trains and nothing else; the output saved as a version loads back
through ``inference.load`` with the same outputs. And what each plugin declares is consistent."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any, get_args

import pytest
import torch
from accelerate import Accelerator
from transformers.utils import logging as hf_logging

from fmstack.errors import InvalidInput, Unsupported
from fmstack.hub import Hub
from fmstack.train import registry
from fmstack.train.adapter_descriptor import AdapterDescriptor
from fmstack.train.inference import load
from fmstack.train.loop import Loop
from fmstack.train.merge import merge
from fmstack.train.methods.heads import HEAD_NAMES
from fmstack.train.prepare import prepare
from fmstack.train.publish import write_output
from fmstack.train.spec import MethodName, TaskName, TrainSpec, parse_spec
from tests.train.conftest import (
    push_classification,
    push_pairs,
    push_text,
    push_tiny_bert,
    push_tiny_gpt2,
)

CASES = [(task, method) for task in registry.TASKS for method in registry.methods_for(task)]


def test_every_registered_method_and_task_is_in_the_table() -> None:
    assert {m for _, m in CASES} == set(registry.METHODS) == set(get_args(MethodName))
    assert {t for t, _ in CASES} == set(registry.TASKS) == set(get_args(TaskName))


@pytest.mark.parametrize("name", list(registry.METHODS))
def test_what_a_plugin_declares_is_consistent(name: str) -> None:
    plugin = registry.METHODS[name]
    assert plugin.name == name and set(plugin.tasks) <= set(registry.TASKS) and plugin.default_lr > 0
    assert set(plugin.options) <= set(TrainSpec.model_fields)  # its flags are spec fields
    assert (plugin.adapter_format is not None) == plugin.is_adapter
    adapter_methods = set(get_args(AdapterDescriptor.model_fields["method"].annotation))
    formats = set(get_args(AdapterDescriptor.model_fields["format"].annotation))
    assert (name in adapter_methods) == plugin.is_adapter  # fmstack_adapter.json can record it
    assert plugin.adapter_format is None or plugin.adapter_format in formats
    assert plugin.rules({"task": "classification", "method": name}) == []  # a plain spec passes


# A value away from the default for every option a task declares (a new option needs one here).
SET_OPTIONS = {
    "head": "cosine",
    "head_lr": 1e-3,
    "label_smoothing": 0.1,
    "rdrop": 1.0,
    "class_weights": "balanced",
    "pooling": "cls",
    "normalize": False,
    "temperature": 0.1,
    "mlm_probability": 0.3,
}


@pytest.mark.parametrize("name", list(registry.TASKS))
def test_what_a_task_declares_is_consistent(name: str) -> None:
    declared = registry.TASKS[name]
    assert declared.name == name and declared.metric and isinstance(declared.higher_is_better, bool)
    assert set(declared.options) <= set(TrainSpec.model_fields) & set(SET_OPTIONS)
    assert declared.rules({"task": name, "method": "full"}) == []  # a plain spec passes
    common = {"base": "a/b", "data": "a/d"}
    for option in declared.options:  # another task refuses the option; a task that reads it takes it
        for other in registry.TASKS:
            fields = {**common, "task": other, option: SET_OPTIONS[option]}
            if other in registry.tasks_reading(option):
                assert getattr(parse_spec(fields), option) == SET_OPTIONS[option]
                continue
            with pytest.raises(InvalidInput, match=f"{option}: applies to .*{name}.* only; task '{other}'"):
                parse_spec(fields)


@pytest.mark.parametrize("name", list(registry.TASKS))
def test_the_spec_consults_the_tasks_rules(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[Mapping[str, Any]] = []

    def rules(values: Mapping[str, Any]) -> list[str]:
        seen.append(values)
        return [f"pooling: {name} says no"]

    monkeypatch.setattr(registry.TASKS[name], "rules", rules)
    fields = {"task": name, "base": "a/b", "data": "a/d"}
    with pytest.raises(InvalidInput, match=f"pooling: {name} says no"):
        parse_spec(fields)
    assert seen and seen[0]["task"] == name
    other = next(t for t in registry.TASKS if t != name)
    parse_spec({**fields, "task": other})  # only the chosen task's rules apply


def test_the_registry_loads_no_torch() -> None:
    """The spec consults every plugin before the heavy libraries load (a bad flag refused in a second)."""
    probe = "import sys, fmstack.train.registry; print(sorted({'torch', 'transformers', 'peft'} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


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
    fields = {"task": task, "method": method, "base": base, "data": data, "batch_size": 8, "max_steps": 1}
    verbosity = hf_logging.get_verbosity()
    prep = prepare(hub, parse_spec({**fields, "lr": 1e-2, "seed": 7}))
    assert hf_logging.get_verbosity() == verbosity  # quiet during the loads only
    before = {k: v.detach().clone() for k, v in prep.model.state_dict().items()}
    # Tied weights (GPT-2's lm_head and wte) appear under both names in the state dict.
    trains = {n for n, p in prep.model.named_parameters(remove_duplicate=False) if p.requires_grad}
    loop = Loop(prep, Accelerator(cpu=True), tmp_path / "ck")
    result = loop.fit()

    # One step changed what the method trains and nothing else (frozen weights, buffers).
    after = result.model.state_dict()
    assert after.keys() == before.keys()
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert changed <= trains, sorted(changed - trains)[:5]
    heads = {k for k in changed if any(part in HEAD_NAMES for part in k.split("."))}
    own = changed - heads  # the method's own weights, not just a task head
    assert own if method != "probe" else (changed and not own), sorted(changed)[:5]

    folder = tmp_path / "out"
    folder.mkdir()
    kind = write_output(loop.prep, result.model, folder, base, data)
    assert kind == ("adapter" if registry.METHODS[method].is_adapter else "model")
    loaded = load(hub, hub.push(f"test/{task}-{method}", folder, kind).ref)  # type: ignore[arg-type]
    assert loaded.task == task and not loaded.model.training

    spec_task = registry.task(task)
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
