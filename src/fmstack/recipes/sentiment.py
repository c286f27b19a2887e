"""``fmstack recipe sentiment``: three-class sentiment (bearish / bullish / neutral, or whatever labels
the file has) on finance headlines or posts, from any file with a text and a label column.

Sentiment data is rarely balanced (neutral dominates), so training weighs each class's loss by the
inverse of its frequency (``class_weights: balanced``) and the report leads with macro-F1, which a
model that ignores the rare classes cannot hide behind, beside accuracy and per-class scores.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from fmstack.compress.loaded import load_version
from fmstack.hub import HubApi
from fmstack.recipes import steps
from fmstack.recipes.classifier import ClassifierSpec, build
from fmstack.recipes.result import RecipeResult, Say
from fmstack.train.evaluate import eval_run


class Spec(ClassifierSpec):
    output: str = Field("recipes/sentiment", description=ClassifierSpec.model_fields["output"].description)
    class_weights: Literal["balanced", "none"] = Field(
        "balanced",
        description="balanced: each class's loss weighed by n / (classes x its count), so rare classes "
        "count; none: every example alike.",
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
    result.serve = f"fmstack serve {made.compressed.repo}@production"
    result.notes.append(
        "drift monitoring is not set up: the monitor package (prediction logs, drift) is not part of "
        "this installation yet"
    )
    return result
