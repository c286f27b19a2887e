"""``compress(hub, ref, spec)``: parent version in, measured and gated ONNX version out, as one hub run.

Order matters: the parent is measured before pruning (pruning edits the torch model in place); the
child is built in a temporary folder and measured there; only a child that passes the accuracy gate
(or is forced) is pushed, so a refused compression leaves no version behind, only a failed run
that records why.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from fmstack.compress.evaluate import (
    EvalData,
    accuracy_points,
    batches,
    cosine_points,
    latency_ms,
    latency_texts,
    load_eval,
    predict,
)
from fmstack.compress.export import INPUTS, export_onnx, output_name
from fmstack.compress.optimize import optimize_graph
from fmstack.compress.prune import attention_shape
from fmstack.compress.registry import PRUNERS, QUANTIZERS
from fmstack.compress.report import CompressReport, Measure, render_markdown
from fmstack.compress.runners import Batch, OnnxRunner, Runner, TorchRunner
from fmstack.compress.source import Parent, load_parent
from fmstack.compress.spec import CompressSpec
from fmstack.errors import Unsupported
from fmstack.hub import HubApi, VersionInfo
from fmstack.hub.cards import CardMeta, render_card
from fmstack.hub.scratch import scratch_dir
from fmstack.servable import ServableModel, write_descriptor
from fmstack.train.pooled import encoder_type, is_pooled, save_config_with_code
from fmstack.transformers_logs import quiet_transformers

Progress = Callable[[str], None]
_EVAL_BATCH = 32


@dataclass
class CompressResult:
    """``version`` is None when the gate refused the result (``report.passed`` False, not forced)."""

    report: CompressReport
    run_id: int
    version: VersionInfo | None

    @property
    def registered(self) -> bool:
        return self.version is not None

    def as_dict(self) -> dict[str, Any]:
        return {
            "registered": self.registered,
            "version": self.version.ref if self.version else None,
            "run_id": self.run_id,
            "report": self.report.model_dump(),
            "size_ratio": round(self.report.size_ratio, 4),
            "speedup_b1": round(self.report.speedup_b1, 3),
            "speedup_b32": round(self.report.speedup_b32, 3),
        }


@contextmanager
def _threads(n: int) -> Iterator[None]:
    before = torch.get_num_threads()
    if n:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _measure(
    runner: Runner, runtime: str, size: int, prepared: list[Batch], b1: Batch, b32: Batch, spec: CompressSpec
) -> tuple[Measure, np.ndarray | None]:
    outputs = predict(runner, prepared) if prepared else None
    measure = Measure(
        runtime=runtime,
        size_bytes=size,
        latency_b1_ms=latency_ms(runner, b1, spec.latency_runs),
        latency_b32_ms=latency_ms(runner, b32, max(1, spec.latency_runs // 4)),
    )
    return measure, outputs


def _quality(
    parent: Parent, outputs: np.ndarray | None, reference: np.ndarray | None, data: EvalData | None
) -> float | None:
    if outputs is None or data is None:
        return None
    if parent.task == "classification":
        assert data.labels is not None  # load_eval gives labels for classifiers
        return round(accuracy_points(outputs, data.labels), 3)
    return round(cosine_points(outputs, outputs if reference is None else reference), 3)


def parent_size(parent: Parent) -> int:
    if parent.folder is not None:
        files = list(parent.folder.glob("*.safetensors"))
        if files:
            return sum(f.stat().st_size for f in files)
    return sum(p.numel() * p.element_size() for p in parent.model.parameters())


def _steps(spec: CompressSpec) -> list[str]:
    steps = []
    if spec.prune:
        steps.append(f"prune {spec.structured or 'magnitude'} {spec.prune:g}")
    steps.append("onnx export")
    if spec.optimize:
        steps.append("graph optimisation")
    if spec.quantize == "int8":
        steps.append(f"int8 {spec.calibration} {'per-channel' if spec.per_channel else 'per-tensor'}")
    return steps


def _build(
    parent: Parent, spec: CompressSpec, work: Path, calibration: list[Batch], say: Progress
) -> tuple[Path, dict[str, Any], dict[str, int]]:
    """Prune, export, optimise, quantise; return the final graph, pruning facts, fused op counts."""
    pruning: dict[str, Any] = {}
    if spec.prune:
        say(f"pruning ({spec.structured or 'magnitude'}, {spec.prune:g})")
        pruning = PRUNERS[spec.structured or "magnitude"](parent.model, spec.prune)
    say("exporting to ONNX")
    graph = export_onnx(parent, work / "export.onnx")
    fused: dict[str, int] = {}
    if spec.optimize:
        say("optimising the graph")
        config: Any = parent.model.config
        try:
            heads, hidden = attention_shape(parent.model)
        except Unsupported:
            heads, hidden = (
                int(getattr(config, "num_attention_heads", 0)),
                int(getattr(config, "hidden_size", 0)),
            )
        fused = optimize_graph(graph, work / "optimized.onnx", encoder_type(config), heads, hidden)
        graph = work / "optimized.onnx"
    if spec.quantize == "int8":
        say(f"quantising to int8 ({spec.calibration})")
        QUANTIZERS[f"int8-{spec.calibration}"](graph, work / "quantized.onnx", spec.per_channel, calibration)
        graph = work / "quantized.onnx"
    return graph, pruning, fused


def _stage(parent: Parent, graph: Path, stage: Path) -> ServableModel:
    """The version's folder: model.onnx, fmstack.json, config.json, tokenizer files."""
    stage.mkdir()
    graph.replace(stage / "model.onnx")
    descriptor = ServableModel(
        format="onnx",
        task=parent.task,
        labels=parent.labels,
        multi_label=parent.multi_label,
        pooling=parent.pooling,
        normalize=parent.normalize,
        max_length=parent.max_length,
        inputs=list(INPUTS),
        output=output_name(parent),
    )
    write_descriptor(stage, descriptor)
    config: Any = parent.model.config
    if is_pooled(config):  # its auto_map names pooled.py: ship it, as training does (docs/interop.md)
        save_config_with_code(config, stage)
    else:
        config.to_json_file(str(stage / "config.json"))
    parent.tokenizer.save_pretrained(str(stage))
    return descriptor


def _card(parent: Parent, report: CompressReport, spec: CompressSpec) -> str:
    task = "text-classification" if parent.task == "classification" else "feature-extraction"
    metrics: dict[str, Any] = {
        "size_bytes": report.after.size_bytes,
        "size_ratio": round(report.size_ratio, 4),
        "latency_b1_ms": report.after.latency_b1_ms,
        "latency_b32_ms": report.after.latency_b32_ms,
    }
    if report.after.quality is not None:
        metrics[report.metric] = report.after.quality
        metrics[f"parent_{report.metric}"] = report.before.quality
    tags = ["onnx", "fmstack-compress", *([spec.quantize] if spec.quantize != "none" else [])]
    meta = CardMeta(task=task, base_model=parent.ref, metrics=metrics, tags=tags, compressed_from=parent.ref)
    if spec.eval_data:
        meta.datasets = [spec.eval_data]
    return render_card(meta, render_markdown(report))


def _calibration(hub: HubApi, parent: Parent, spec: CompressSpec, data: EvalData | None) -> list[Batch]:
    if spec.calibration != "static":
        return []
    if spec.calibration_data:
        texts = load_eval(hub, spec.calibration_data, None, spec.calibration_samples, None).texts
    else:
        assert data is not None  # spec.check: static needs calibration or eval data
        texts = data.texts[: spec.calibration_samples]
    return batches(parent.tokenizer, texts, parent.max_length, 8)


def compress(hub: HubApi, ref: str, spec: CompressSpec, progress: Progress | None = None) -> CompressResult:
    """Compress model version ``ref`` as ``spec`` says; register the result unless the gate refuses it."""
    spec.check()
    with quiet_transformers():
        return _compress(hub, ref, spec, progress or (lambda _msg: None))


def _compress(hub: HubApi, ref: str, spec: CompressSpec, say: Progress) -> CompressResult:
    say(f"loading {ref}")
    parent = load_parent(hub, ref)
    output = spec.output or f"{hub.resolve(parent.ref).repo}-onnx"
    hub.check_repo_kind(output, "model")  # a bad or clashing output fails now, not after minutes of work
    data = (
        load_eval(
            hub,
            spec.eval_data,
            spec.eval_split,
            spec.eval_limit,
            parent.labels if parent.task == "classification" else None,
        )
        if spec.eval_data
        else None
    )
    calibration = _calibration(hub, parent, spec, data)
    inputs = [parent.ref, *([data.ref] if data else [])]
    # Recorded from the start: an error, Ctrl-C or SIGTERM leaves a failed run with the reason.
    with hub.runs.recorded("compress", spec.model_dump(), inputs=inputs) as run_id:
        return _run(hub, parent, spec, data, calibration, output, run_id, say)


def _run(
    hub: HubApi,
    parent: Parent,
    spec: CompressSpec,
    data: EvalData | None,
    calibration: list[Batch],
    output: str,
    run_id: int,
    say: Progress,
) -> CompressResult:
    texts = data.texts if data else []
    prepared = batches(parent.tokenizer, texts, parent.max_length, _EVAL_BATCH)
    b32 = batches(parent.tokenizer, latency_texts(texts, 32), parent.max_length, 32)[0]
    b1 = batches(parent.tokenizer, latency_texts(texts, 1), parent.max_length, 1)[0]
    # Under FMSTACK_HOME, not the system temp folder: a killed compress's work is there for gc.
    with _threads(spec.threads), scratch_dir(hub.settings.home, "compress") as tmp:
        work = Path(tmp)
        say("measuring the parent (torch fp32)")
        before, reference = _measure(
            TorchRunner(parent), "torch fp32", parent_size(parent), prepared, b1, b32, spec
        )
        before.quality = _quality(parent, reference, reference, data)
        graph, pruning, fused = _build(parent, spec, work, calibration, say)
        descriptor = _stage(parent, graph, work / "stage")
        say("measuring the compressed model (ONNX Runtime)")
        child = OnnxRunner(work / "stage" / "model.onnx", descriptor, spec.threads)
        size = (work / "stage" / "model.onnx").stat().st_size
        runtime = f"onnxruntime {'int8' if spec.quantize == 'int8' else 'fp32'}"
        after, outputs = _measure(child, runtime, size, prepared, b1, b32, spec)
        after.quality = _quality(parent, outputs, reference, data)
        report = _report(parent, spec, data, before, after, pruning, fused)
        hub.runs.log_metrics(run_id, 0, _metrics(report))
        if not report.passed and not report.forced:
            refused = (
                f"refused: quality dropped {report.drop_points:.2f} points (limit {report.max_drop_points})"
            )
            hub.runs.append_log(run_id, refused)
            # ``error``: the reason, where every failed run records it
            hub.runs.finish(run_id, "failed", spec_update={"report": report.model_dump(), "error": refused})
            return CompressResult(report=report, run_id=run_id, version=None)
        say(f"registering {output}")
        message = f"compressed from {parent.ref}: {', '.join(report.steps)}"
        version = hub.push(
            output, work / "stage", "model", message=message, card=_card(parent, report, spec), run_id=run_id
        )
    hub.runs.finish(run_id, "succeeded", spec_update={"report": report.model_dump(), "output": version.ref})
    return CompressResult(report=report, run_id=run_id, version=version)


def _report(
    parent: Parent,
    spec: CompressSpec,
    data: EvalData | None,
    before: Measure,
    after: Measure,
    pruning: dict[str, Any],
    fused: dict[str, int],
) -> CompressReport:
    drop = (
        None if before.quality is None or after.quality is None else round(before.quality - after.quality, 3)
    )
    gate = spec.gate
    exceeded = drop is not None and gate is not None and drop > gate
    return CompressReport(
        parent=parent.ref,
        task=parent.task,
        metric="none"
        if data is None
        else ("accuracy" if parent.task == "classification" else "cosine_to_parent"),
        eval_data=data.ref if data else None,
        eval_rows=len(data.texts) if data else 0,
        steps=(["merge adapters"] if parent.merged_from else []) + _steps(spec),
        pruning=pruning,
        fused_ops=fused,
        before=before,
        after=after,
        drop_points=drop,
        max_drop_points=gate,
        passed=not exceeded,
        forced=exceeded and spec.force,
        threads=spec.threads,
    )


def _metrics(report: CompressReport) -> dict[str, float]:
    metrics = {
        "size_ratio": report.size_ratio,
        "speedup_b1": report.speedup_b1,
        "speedup_b32": report.speedup_b32,
    }
    if report.drop_points is not None:
        metrics["drop_points"] = report.drop_points
    return metrics
