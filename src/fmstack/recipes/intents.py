"""``fmstack recipe intents``: customer-service intent detection that hands unsure requests to a human.

The classifier steps (``classifier.build``), then a threshold: the int8 model scores the validation
split, the coverage-vs-accuracy curve of answering only at or above each confidence is computed, and
the lowest threshold whose answered requests reach ``--target-accuracy`` is chosen. A new version
carries it in its ``fmstack.json`` (``fallback_threshold``), so ``fmstack serve`` answers
``fallback: true`` below it with no flag. The test split is scored once, at the chosen threshold.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from pydantic import Field

from fmstack.data import format as dataformat
from fmstack.errors import InvalidInput
from fmstack.hub import HubApi
from fmstack.recipes import steps, thresholds
from fmstack.recipes.classifier import ClassifierSpec, build
from fmstack.recipes.result import RecipeResult, Say
from fmstack.recipes.scoring import forward_texts
from fmstack.servable import DESCRIPTOR
from fmstack.serve.loader import load_runtime

COVERAGES = (1.0, 0.95, 0.9, 0.85, 0.8, 0.7, 0.6, 0.5)


class Spec(ClassifierSpec):
    output: str = Field("recipes/intents", description=ClassifierSpec.model_fields["output"].description)
    target_accuracy: float = Field(
        0.95,
        gt=0,
        le=1,
        description="Accuracy wanted on the requests answered (not handed to a human), 0..1; the "
        "threshold is the lowest that reaches it on validation.",
    )


def run(hub: HubApi, spec: Spec, say: Say) -> RecipeResult:
    result = RecipeResult("intents")
    made = build(hub, spec, result, say)
    data_dir = hub.checkout(made.data.ref)

    def choose() -> thresholds.Point:
        confidence, correct = _scored(hub, made.compressed.ref, data_dir, "validation")
        points = thresholds.curve(confidence, correct)
        chosen, met = thresholds.pick(points, spec.target_accuracy)
        result.tables["validation_curve"] = [p.__dict__ for p in thresholds.at_coverage(points, COVERAGES)]
        result.metrics.update(
            {
                "threshold": chosen.threshold,
                "validation_coverage": chosen.coverage,
                "validation_answered_accuracy": chosen.accuracy,
                "target_met": met,
            }
        )
        if not met:
            result.notes.append(
                f"no threshold reaches {spec.target_accuracy:.0%} accuracy on validation; the most "
                f"accurate one was chosen ({chosen.accuracy:.1%} at {chosen.coverage:.0%} coverage): "
                "more data or epochs, or a lower --target-accuracy"
            )
        return chosen

    chosen = steps.timed(result, "choose the fallback threshold on validation", say, choose)

    def report_test() -> None:
        confidence, correct = _scored(hub, made.compressed.ref, data_dir, "test")
        on_test = thresholds.answer(confidence, correct, chosen.threshold)
        result.metrics.update(
            {
                "test_coverage": on_test.coverage,
                "test_answered_accuracy": on_test.accuracy,
                "test_int8_accuracy": float(correct.mean()) if len(correct) else 0.0,
            }
        )

    steps.timed(result, "score the test split once, at that threshold", say, report_test)

    def set_threshold(folder: Path) -> dict[str, float]:
        descriptor = json.loads((folder / DESCRIPTOR).read_text())
        descriptor["fallback_threshold"] = chosen.threshold
        (folder / DESCRIPTOR).write_text(json.dumps(descriptor, indent=2) + "\n")
        return {k: float(v) for k, v in result.metrics.items() if isinstance(v, int | float)}

    final = steps.timed(
        result,
        "publish the version with its threshold, alias production",
        say,
        lambda: steps.publish_derived(
            hub,
            made.compressed,
            spec.output,
            "calibrate",
            {"threshold": chosen.threshold, "target_accuracy": spec.target_accuracy, "split": "validation"},
            [made.compressed.ref, made.data.ref],
            set_threshold,
        ),
    )
    result.versions["served"] = final
    result.versions["production"] = hub.tag(final.ref, "production")
    result.serve = f"fmstack serve {spec.output}@production"
    return result


def _scored(
    hub: HubApi, ref: str, data_dir: Path, split: str
) -> tuple[NDArray[np.float32], NDArray[np.bool_]]:
    """(confidence, correct) of the served version ``ref`` on ``split``: its top score per text and
    whether its label is the gold one."""
    table = dataformat.read_split(data_dir, split)
    if table.num_rows == 0:
        raise InvalidInput(
            f"the {split!r} split is empty: give more rows (each label needs a few in every split)"
        )
    _, runtime = load_runtime(hub, ref, None)
    try:
        scores = forward_texts(runtime, [str(t) for t in table.column("text").to_pylist()])
        labels = np.array(runtime.info.labels)
    finally:
        runtime.close()
    gold = np.array([str(v) for v in table.column("label").to_pylist()])
    return scores.max(axis=1), labels[scores.argmax(axis=1)] == gold
