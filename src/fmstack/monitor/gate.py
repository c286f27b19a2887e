"""The promotion gate: may a candidate replace production? Pure functions over predicted labels.

The candidate must beat production on a fixed held-out set by ``min_gain`` and on held-out recent
feedback by ``min_feedback_gain``, and no class's recall on the held-out set may fall by more than
``max_class_drop``. Every failed condition is named, with its numbers.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field

from pydantic import BaseModel, ConfigDict, Field

from fmstack.errors import Conflict


class GateSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    holdout: str = Field(description="Dataset ref of the fixed held-out set (pin a version: NS/NAME:N).")
    holdout_split: str = Field("test", description="Its split to score.")
    limit: int | None = Field(
        2000, ge=1, description="Score at most this many held-out rows (a fixed sample)."
    )
    min_gain: float = Field(
        0.0,
        description="Candidate accuracy minus production's on the held-out set must be >= this (points, 0-1).",
    )
    min_feedback_gain: float = Field(0.0, description="The same on the held-out share of recent feedback.")
    min_feedback_rows: int = Field(
        10, ge=0, description="Fewest held-out feedback rows to judge on (0: none needed)."
    )
    max_class_drop: float = Field(
        0.05, ge=0, le=1, description="Largest fall of any class's held-out recall from production's."
    )


class GateFailed(Conflict):
    """The candidate did not pass the gate; production was left as it was."""


@dataclass(frozen=True)
class Scores:
    accuracy: float
    recall: dict[str, float]  # per true label
    rows: int


def score(predicted: Sequence[str], truth: Sequence[str]) -> Scores:
    hits: dict[str, list[bool]] = defaultdict(list)
    for guess, label in zip(predicted, truth, strict=True):
        hits[label].append(guess == label)
    right = sum(sum(v) for v in hits.values())
    return Scores(
        accuracy=right / len(truth) if truth else 0.0,
        recall={label: sum(v) / len(v) for label, v in sorted(hits.items())},
        rows=len(truth),
    )


@dataclass(frozen=True)
class Verdict:
    passed: bool
    reasons: list[str] = field(default_factory=list)  # why not, one line per failed condition
    figures: dict[str, float] = field(default_factory=dict)


def decide(
    spec: GateSpec, production: Scores, candidate: Scores, production_fb: Scores, candidate_fb: Scores
) -> Verdict:
    reasons: list[str] = []
    gain = candidate.accuracy - production.accuracy
    if gain < spec.min_gain:
        reasons.append(
            f"held-out accuracy {candidate.accuracy:.4f} vs production {production.accuracy:.4f}: gain "
            f"{gain:+.4f} < min_gain {spec.min_gain:+.4f}"
        )
    fb_gain = candidate_fb.accuracy - production_fb.accuracy
    if candidate_fb.rows < spec.min_feedback_rows:
        reasons.append(
            f"{candidate_fb.rows} held-out feedback rows, fewer than min_feedback_rows {spec.min_feedback_rows}: "
            "wait for more feedback"
        )
    elif candidate_fb.rows and fb_gain < spec.min_feedback_gain:
        reasons.append(
            f"feedback accuracy {candidate_fb.accuracy:.4f} vs production {production_fb.accuracy:.4f}: gain "
            f"{fb_gain:+.4f} < min_feedback_gain {spec.min_feedback_gain:+.4f}"
        )
    drops = {
        label: production.recall[label] - recall
        for label, recall in candidate.recall.items()
        if production.recall.get(label, 0.0) - recall > spec.max_class_drop
    }
    if drops:
        worst = sorted(drops.items(), key=lambda kv: -kv[1])[:5]
        shown = ", ".join(f"{label} -{drop:.3f}" for label, drop in worst)
        reasons.append(
            f"{len(drops)} classes lose more than max_class_drop {spec.max_class_drop} of recall: {shown}"
        )
    figures = {
        "holdout_production": production.accuracy,
        "holdout_candidate": candidate.accuracy,
        "feedback_production": production_fb.accuracy,
        "feedback_candidate": candidate_fb.accuracy,
        "feedback_rows": float(candidate_fb.rows),
        "worst_class_drop": max(
            (production.recall.get(k, 0.0) - v for k, v in candidate.recall.items()), default=0.0
        ),
    }
    return Verdict(not reasons, reasons, figures)
