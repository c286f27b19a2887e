"""``fmstack recipe sentiment``: three-class sentiment (bearish / bullish / neutral, or whatever labels
the file has) on finance headlines or posts, from any file with a text and a label column.

Sentiment data is rarely balanced (neutral dominates), so training weighs each class's loss by the
inverse of its frequency (``class_weights: balanced``) and the report leads with macro-F1, which a
model that ignores the rare classes cannot hide behind, beside accuracy and per-class scores.

Drift monitoring is the monitor's (``fmstack.monitor``): the served model logs its predictions
(``--log-predictions``), ``fmstack monitor report`` compares them with the training data, and
``--loop-spec FILE`` writes the retraining loop that acts on it (``fmstack loop run FILE``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import yaml
from pydantic import Field

from fmstack.compress.loaded import load_version
from fmstack.hub import HubApi
from fmstack.monitor.loop_spec import LoopSpec, parse_loop
from fmstack.recipes import steps
from fmstack.recipes.classifier import LR, ClassifierSpec, build
from fmstack.recipes.result import RecipeResult, Say
from fmstack.train.evaluate import eval_run


class Spec(ClassifierSpec):
    output: str = Field("recipes/sentiment", description=ClassifierSpec.model_fields["output"].description)
    class_weights: Literal["balanced", "none"] = Field(
        "balanced",
        description="balanced: each class's loss weighed by n / (classes x its count), so rare classes "
        "count; none: every example alike.",
    )
    loop_spec: str | None = Field(
        None,
        description="Write here a `fmstack loop run` spec that watches the served model and retrains it "
        "with these settings on label drift (PSI > 0.2) or 100 new feedback rows, gated on the test split.",
    )


def run(hub: HubApi, spec: Spec, say: Say) -> RecipeResult:
    result = RecipeResult("sentiment")
    made = build(hub, spec, result, say, train_options={"class_weights": spec.class_weights})
    _, int8 = steps.timed(
        result,
        "evaluate the int8 model on the test split",
        say,
        lambda: eval_run(hub, made.compressed.ref, made.data.ref, "test", load_version),
    )
    result.metrics.update({"test_int8_accuracy": int8["accuracy"], "test_int8_macro_f1": int8["macro_f1"]})
    result.versions["production"] = hub.tag(made.compressed.ref, "production")
    served = f"{made.compressed.repo}@production"
    loop = _loop_spec(spec, made.data.ref, made.compressed.repo, result.versions["base"].ref)
    if spec.loop_spec is not None:
        Path(spec.loop_spec).write_text(
            yaml.safe_dump(loop.model_dump(mode="json", exclude_none=True), sort_keys=False)
        )
        result.notes.append(
            f"wrote {spec.loop_spec}: `fmstack loop run {spec.loop_spec}` retrains on drift or feedback"
        )
    result.notes.append(
        f"monitor drift: serve with `--log-predictions 0.1`, then `fmstack monitor report {served}` "
        "(label and confidence PSI against the training data, feedback accuracy)"
    )
    result.serve = f"fmstack serve {served} --log-predictions 0.1"
    return result


def _loop_spec(spec: Spec, data: str, repo: str, base: str) -> LoopSpec:
    """The feedback loop that watches the served model: retrain (same recipe settings) when its
    predicted labels drift from the training data's (PSI above 0.2, the usual "significant shift"
    line) or 100 new feedback rows arrive, gated on the test split, then move ``production``."""
    train = {
        "base": base,
        "task": "classification",
        "method": spec.method,
        "epochs": spec.epochs,
        "lr": spec.lr or LR.get(spec.method),
        "batch_size": spec.batch_size,
        "max_length": spec.max_length,
        "class_weights": spec.class_weights,
        "output": f"{spec.output}-{spec.method}",
        "seed": spec.seed,
    }
    compress = {
        "quantize": "int8",
        "eval_data": data,
        "eval_split": "validation",
        "max_accuracy_drop": spec.max_accuracy_drop,
        "output": repo,
    }
    return parse_loop(
        {
            "model": f"{repo}@production",
            "data": data,
            "feedback": f"{spec.output}-feedback",
            "trigger": {"min_feedback": 100, "max_label_psi": 0.2},
            "train": train,
            "compress": compress,
            "gate": {"holdout": data, "holdout_split": "test"},
        }
    )
