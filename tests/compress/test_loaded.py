"""``fmstack eval`` on ONNX versions: ONNX Runtime answers through the training metrics, and an fp32
export scores what its parent scores."""

from __future__ import annotations

import pytest

from fmstack.compress import CompressSpec, compress
from fmstack.compress.loaded import OnnxModule, load_version
from fmstack.hub import Hub
from fmstack.train.evaluate import eval_run

FAST = {"latency_runs": 2, "threads": 1}


@pytest.mark.parametrize("model", ["classifier", "encoder"])
def test_an_fp32_onnx_version_scores_what_its_parent_scores(
    hub: Hub, model: str, eval_data: str, request: pytest.FixtureRequest
) -> None:
    parent = request.getfixturevalue(model)
    child = compress(hub, parent, CompressSpec(export="onnx", **FAST)).version
    assert child is not None
    loaded = load_version(hub, child.ref)
    assert isinstance(loaded.model, OnnxModule) and loaded.ref == child.ref
    _, before = eval_run(hub, parent, eval_data, "test", load_version)
    run_id, after = eval_run(hub, child.ref, eval_data, "test", load_version)
    metric = "accuracy" if model == "classifier" else "recall@1"
    assert after[metric] == pytest.approx(before[metric], abs=0.02)  # a near tie may flip one of 60
    if model == "classifier":
        assert before["accuracy"] > 0.9 and after["loss"] == pytest.approx(before["loss"], abs=1e-4)
        assert after["per_class"].keys() == before["per_class"].keys()
    run = hub.runs.get(run_id)
    assert run.kind == "eval" and run.status == "succeeded" and child.ref in run.inputs


def test_torch_versions_load_as_before(hub: Hub, classifier: str) -> None:
    assert not isinstance(load_version(hub, classifier).model, OnnxModule)
