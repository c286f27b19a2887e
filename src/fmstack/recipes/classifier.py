"""The part of the intents and sentiment recipes that is the same: a text classifier from a user's
file to an int8 ONNX version, every step recorded.

ingest (text + label columns) -> process (normalise, deduplicate, split 70/10/20 stratified unless
the files are named train/validation/test) -> fine-tune (LoRA by default) -> evaluate on test ->
compress (merge, ONNX, int8, gated on validation). What each recipe adds (a fallback threshold, class
weights, per-class scores) lives in its own module.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from fmstack.data.ingest import IngestSpec
from fmstack.hub import HubApi, VersionInfo
from fmstack.hub.importers import BUILTIN_REPO
from fmstack.recipes import steps
from fmstack.recipes.result import RecipeResult, Say
from fmstack.train.evaluate import eval_run
from fmstack.train.spec import MethodName, TrainSpec

# Peak learning rates for a few hundred to a few thousand rows and a handful of epochs (the demo's,
# measured on its sample); the methods' general defaults are for longer runs.
LR: dict[str, float] = {"lora": 5e-3, "full": 2e-4}


class ClassifierSpec(BaseModel):
    """Fields of every classifier recipe; the field docs are ``fmstack recipe NAME --help``."""

    model_config = ConfigDict(extra="forbid")
    schema_version: Literal[1] = 1
    data: list[str] = Field(
        description="Your data: one file (split here 70/10/20, stratified by label) or files named "
        "train/validation/test; CSV, TSV, JSONL or Parquet."
    )
    text_column: str = Field("text", description="Column holding the text.")
    label_column: str = Field("label", description="Column holding the label.")
    output: str = Field(
        description="NS/NAME of the served model; the steps' versions are NAME-raw, NAME-data, ..."
    )
    base: str = Field(
        BUILTIN_REPO, description="Base model version (the built-in MiniLM is imported when absent)."
    )
    method: MethodName = Field("lora", description="Fine-tuning method (see fmstack train finetune --help).")
    epochs: int = Field(8, ge=1, description="Training epochs.")
    lr: float | None = Field(
        None, gt=0, description="Peak learning rate (default: 5e-3 for lora, 2e-4 for full)."
    )
    batch_size: int = Field(32, ge=1, description="Examples per training batch.")
    max_length: int = Field(64, ge=8, description="Longest text in tokens (longer ones are cut).")
    max_accuracy_drop: float = Field(
        2.0,
        ge=0,
        description="Refuse the int8 model when validation accuracy drops more than this many points.",
    )
    seed: int = Field(0, description="Seed of the split and of training.")


@dataclass(frozen=True)
class Classifier:
    data: VersionInfo  # the processed dataset (train / validation / test)
    trained: VersionInfo
    compressed: VersionInfo


def build(
    hub: HubApi,
    spec: ClassifierSpec,
    result: RecipeResult,
    say: Say,
    train_options: dict[str, Any] | None = None,
) -> Classifier:
    """Every step from the file to the int8 version, into ``result`` (versions, test metrics, times)."""
    out = spec.output
    steps.check_files(spec.data)  # before any work
    result.versions["base"] = steps.timed(
        result, "find the base model", say, lambda: steps.base_model(hub, spec.base)
    )
    ingest_spec = IngestSpec(
        name=f"{out}-raw", paths=spec.data, text_column=spec.text_column, label_column=spec.label_column
    )
    raw, data = steps.timed(
        result,
        "ingest and process: normalise, deduplicate, split",
        say,
        lambda: steps.ingest_and_process(hub, ingest_spec, f"{out}-data", spec.seed),
    )
    result.versions["raw"], result.versions["data"] = raw, data
    train_spec = TrainSpec(
        base=result.versions["base"].ref,
        data=data.ref,
        task="classification",
        method=spec.method,
        epochs=spec.epochs,
        lr=spec.lr or LR.get(spec.method),
        batch_size=spec.batch_size,
        max_length=spec.max_length,
        output=f"{out}-{spec.method}",
        seed=spec.seed,
        **(train_options or {}),
    )
    trained = steps.timed(
        result, f"fine-tune ({spec.method})", say, lambda: steps.train_model(hub, train_spec)
    )
    result.versions["trained"] = trained
    _, metrics = steps.timed(
        result, "evaluate on the test split", say, lambda: eval_run(hub, trained.ref, data.ref, split="test")
    )
    result.metrics.update({f"test_{k}": v for k, v in metrics.items() if isinstance(v, int | float)})
    result.tables["test_per_class"] = [{"label": k, **v} for k, v in metrics.get("per_class", {}).items()]
    compressed = steps.timed(
        result,
        "compress: merge, ONNX, int8, gated on validation",
        say,
        lambda: steps.compress_int8(hub, trained.ref, data.ref, spec.max_accuracy_drop, f"{out}-onnx"),
    )
    result.versions["compressed"] = compressed
    return Classifier(data, trained, compressed)
