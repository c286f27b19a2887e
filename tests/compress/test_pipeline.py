"""compress() end to end on tiny models: registered versions, lineage, card, gate, bad input."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from transformers.utils import logging as hf_logging

from fmstack.compress import CompressSpec, compress
from fmstack.errors import Conflict, InvalidInput, NotFound, Unsupported
from fmstack.hub import Hub
from fmstack.servable import read_descriptor
from tests.compress.conftest import LABELS, build_dataset

FAST = {"latency_runs": 2, "threads": 1}


def test_int8_classifier_is_registered_with_lineage_descriptor_and_report(
    hub: Hub, classifier: str, eval_data: str
) -> None:
    result = compress(hub, classifier, CompressSpec(quantize="int8", eval_data=eval_data, **FAST))
    assert result.registered and result.version is not None
    report = result.report
    assert report.before.quality == 100.0 and report.after.quality is not None
    assert report.drop_points is not None and report.drop_points <= 1.0
    assert report.fused_ops.get("Attention") == 2
    assert report.after.size_bytes < report.before.size_bytes
    ref = result.version.ref
    assert ref.startswith("acme/tiny-cls-onnx:")
    detail = hub.info(ref)
    assert {"model.onnx", "fmstack.json", "config.json", "tokenizer.json"} <= {f.path for f in detail.files}
    descriptor = read_descriptor(hub.checkout(ref))
    assert descriptor is not None
    assert (descriptor.format, descriptor.task, descriptor.labels, descriptor.output) == (
        "onnx",
        "classification",
        LABELS,
        "logits",
    )
    assert "compressed_from: " + classifier in detail.card and "## Compression report" in detail.card
    run = hub.runs.get(result.run_id)
    assert run.kind == "compress" and run.status == "succeeded"
    assert classifier in run.inputs and eval_data in run.inputs
    assert run.spec["report"]["after"]["quality"] == report.after.quality


def test_embedding_model_reports_cosine_to_parent(hub: Hub, encoder: str, eval_data: str) -> None:
    result = compress(
        hub, encoder, CompressSpec(quantize="int8", eval_data=eval_data, output="acme/emb", **FAST)
    )
    assert result.version is not None and result.version.ref == "acme/emb:1"
    assert result.report.metric == "cosine_to_parent" and result.report.before.quality == 100.0
    assert result.report.after.quality is not None and result.report.after.quality > 99.0
    descriptor = read_descriptor(hub.checkout("acme/emb:1"))
    assert descriptor is not None
    assert (descriptor.task, descriptor.pooling, descriptor.normalize, descriptor.output) == (
        "embedding",
        "mean",
        True,
        "last_hidden_state",
    )


def test_gate_refuses_and_registers_nothing(hub: Hub, encoder: str, eval_data: str) -> None:
    # Removing 3 of 4 heads changes every embedding: cosine to the parent drops well below 100.
    spec = CompressSpec(prune=0.75, structured="heads", eval_data=eval_data, max_accuracy_drop=0.0, **FAST)
    result = compress(hub, encoder, spec)
    assert not result.registered and not result.report.passed
    assert result.report.drop_points is not None and result.report.drop_points > 0
    assert [r.repo for r in hub.ls()].count("acme/tiny-enc-onnx") == 0
    run = hub.runs.get(result.run_id)
    assert run.status == "failed" and "refused" in hub.runs.logs(result.run_id)
    assert run.spec["error"].startswith("refused: quality dropped ")
    forced = compress(hub, encoder, spec.model_copy(update={"force": True}))
    assert forced.registered and "exceeded (registered with --force)" in hub.info(forced.version.ref).card  # type: ignore[union-attr]


def test_without_eval_data_quality_is_not_measured(hub: Hub, classifier: str) -> None:
    verbosity, bars = hf_logging.get_verbosity(), hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_info()  # a caller's own choices, which compress must leave as they were
    hf_logging.enable_progress_bar()
    try:
        result = compress(hub, classifier, CompressSpec(**FAST))
        assert hf_logging.get_verbosity() == logging.INFO and hf_logging.is_progress_bar_enabled()
    finally:
        hf_logging.set_verbosity(verbosity)
        if not bars:
            hf_logging.disable_progress_bar()
    assert result.registered and result.report.metric == "none" and result.report.drop_points is None
    assert "quality was not measured" in hub.info(result.version.ref).card  # type: ignore[union-attr]


def test_bad_inputs_fail_before_any_run(hub: Hub, classifier: str, eval_data: str, tmp_path: Path) -> None:
    with pytest.raises(NotFound):
        compress(hub, "acme/missing", CompressSpec())
    with pytest.raises(InvalidInput, match="dataset version"):
        compress(hub, eval_data, CompressSpec())
    with pytest.raises(InvalidInput, match="give a dataset version"):
        compress(hub, classifier, CompressSpec(eval_data=classifier))
    other = hub.push("acme/other-data", build_dataset(tmp_path / "d", labels=["x", "y", "z"]), "dataset").ref
    with pytest.raises(InvalidInput, match="labels the model does not know"):
        compress(hub, classifier, CompressSpec(eval_data=other))
    with pytest.raises(InvalidInput, match="invalid compression spec"):
        compress(hub, classifier, CompressSpec(structured="heads"))
    with pytest.raises(InvalidInput):
        compress(hub, classifier, CompressSpec(output="not a repo"))
    with pytest.raises(Conflict, match="acme/other-data is a dataset repo"):
        compress(hub, classifier, CompressSpec(output="acme/other-data"))
    assert hub.runs.recent(kind="compress") == []


def test_unsupported_architecture(hub: Hub, tmp_path: Path, classifier_dir: Path) -> None:
    import json
    import shutil

    folder = tmp_path / "mlm"
    shutil.copytree(classifier_dir, folder)
    config = json.loads((folder / "config.json").read_text())
    config["architectures"] = ["BertForMaskedLM"]
    (folder / "config.json").write_text(json.dumps(config))
    ref = hub.push("acme/mlm", folder, "model").ref
    with pytest.raises(Unsupported, match="sequence classifiers"):
        compress(hub, ref, CompressSpec())


def test_compressing_an_onnx_version_is_refused(
    hub: Hub, classifier_dir: Path, exported: dict[str, Path], tmp_path: Path
) -> None:
    import shutil

    folder = tmp_path / "onnx-version"
    shutil.copytree(classifier_dir, folder)
    shutil.copy(exported["classification"], folder / "model.onnx")
    ref = hub.push("acme/already-onnx", folder, "model").ref
    with pytest.raises(InvalidInput, match="already an ONNX version"):
        compress(hub, ref, CompressSpec())


def test_an_interrupted_compress_is_a_failed_run_and_its_work_was_under_fmstack_home(
    hub: Hub, classifier: str
) -> None:
    seen: list[Path] = []

    def interrupt(message: str) -> None:
        if message.startswith("measuring the parent"):  # the work has started, in its scratch folder
            (running,) = hub.runs.recent(kind="compress")
            assert running.status == "running"
            seen.extend((hub.settings.home / "tmp").glob("compress-*"))
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        compress(hub, classifier, CompressSpec(**FAST), interrupt)
    assert len(seen) == 1 and not seen[0].exists()  # removed on the way out
    (run,) = hub.runs.recent(kind="compress")
    assert run.status == "failed" and run.spec["error"] == "interrupted (Ctrl-C)"
    assert "failed: interrupted (Ctrl-C)" in hub.runs.logs(run.id)
