"""The loop's spec (``fmstack loop run LOOP.yaml``): what triggers a retrain, how the candidate is
trained (the existing TrainSpec) and compressed (the existing CompressSpec), the gate it must pass and
the alias it is promoted to. Every problem is reported at once, before any work."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from fmstack.compress.spec import CompressSpec
from fmstack.compress.spec import parse_spec as parse_compress
from fmstack.errors import InvalidInput, clip
from fmstack.hub.refs import parse_ref
from fmstack.monitor.gate import GateSpec
from fmstack.train.registry import method
from fmstack.train.spec import TrainSpec
from fmstack.train.spec import parse_spec as parse_train


class Trigger(BaseModel):
    """Any condition that holds fires the loop; unset conditions are not checked."""

    model_config = ConfigDict(extra="forbid")
    min_feedback: int | None = Field(
        100, ge=1, description="New feedback rows on the repo since the last loop run of this model."
    )
    max_label_psi: float | None = Field(
        None, gt=0, description="PSI of production's predicted labels against its training data's above this."
    )
    min_feedback_accuracy: float | None = Field(
        None, gt=0, le=1, description="Production's accuracy on its feedback below this."
    )
    min_rows: int = Field(30, ge=1, description="Fewest rows the PSI and accuracy conditions judge on.")


class LoopSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    schema_version: Literal[1] = 1
    model: str = Field(description="The served ref whose alias moves: NS/NAME@ALIAS.")
    data: str = Field(
        description="Dataset ref production was trained on; its train split plus feedback is retrained on."
    )
    feedback: str = Field(description="Dataset repo NS/NAME the loop exports feedback to.")
    merged: str | None = Field(
        None, description="Dataset repo of old data + feedback (default: <feedback>-train)."
    )
    feedback_weight: int = Field(
        1, ge=1, description="Times each feedback row is repeated in the merged train split."
    )
    holdout: float = Field(
        0.2, ge=0, lt=1, description="Share of feedback held out for the gate, by request id."
    )
    pseudo_labels: bool = Field(False, description="Also train on confident predictions without feedback.")
    min_confidence: float = Field(0.9, gt=0, le=1, description="Confidence of a pseudo-label.")
    trigger: Trigger = Field(default_factory=Trigger)
    train: dict[str, Any] = Field(
        description="A TrainSpec without data (the loop sets it); output is required."
    )
    compress: dict[str, Any] | None = Field(None, description="A CompressSpec; output is required.")
    gate: GateSpec
    log_dir: Path | None = Field(None, description="The prediction log (default: FMSTACK_HOME/predictions).")
    poll_s: float = Field(300.0, gt=0, description="Daemon mode: seconds between trigger checks.")

    @model_validator(mode="after")
    def _refs(self) -> LoopSpec:
        ref = parse_ref(self.model)
        if ref.alias is None:
            raise ValueError(f"model: {self.model!r} names no alias; the loop moves one: NS/NAME@ALIAS")
        for name in ("feedback", "merged"):
            value = getattr(self, name)
            if value is not None and parse_ref(value).version is not None:
                raise ValueError(
                    f"{name}: {value!r} is a repo the loop writes to: NS/NAME, without a version"
                )
        return self

    @property
    def repo(self) -> str:
        return parse_ref(self.model).repo

    @property
    def alias(self) -> str:
        return str(parse_ref(self.model).alias)

    @property
    def merged_repo(self) -> str:
        return self.merged or f"{self.feedback}-train"

    def train_spec(self, data: str) -> TrainSpec:
        return parse_train({**self.train, "data": data})

    def compress_spec(self) -> CompressSpec | None:
        return parse_compress(self.compress) if self.compress is not None else None


def parse_loop(raw: dict[str, Any]) -> LoopSpec:
    """Validate a loop spec, with the train and compress specs inside it, reporting every problem."""
    problems: list[str] = []
    try:
        spec: LoopSpec | None = LoopSpec.model_validate(raw)
    except ValidationError as exc:
        spec = None
        for err in exc.errors():
            loc = ".".join(str(p) for p in err["loc"]) or "spec"
            problems.append(f"{clip(loc)}: {err['msg']}")
    if spec is not None:
        problems += _inner(spec)
    if problems or spec is None:
        listed = "\n  - ".join(problems)
        raise InvalidInput(f"the loop spec has {len(problems)} problem(s):\n  - {listed}")
    return spec


def _inner(spec: LoopSpec) -> list[str]:
    """The train and compress specs, and that the promoted version lands in the alias's repo."""
    problems: list[str] = []
    if "data" in spec.train:
        problems.append(
            "train.data: leave it out; the loop trains on data + feedback (set 'data' at the top)"
        )
    try:
        train = spec.train_spec(spec.data)
    except InvalidInput as exc:
        return [*problems, f"train: {exc}"]
    try:
        compress = spec.compress_spec()
    except InvalidInput as exc:
        return [*problems, f"compress: {exc}"]
    if not train.output:
        problems.append("train.output: name the repo candidates are pushed to (NS/NAME)")
    final = compress.output if compress is not None else train.output
    if compress is not None and not compress.output:
        problems.append("compress.output: name the repo compressed candidates go to (the alias's repo)")
    elif final and parse_ref(final).repo != spec.repo:
        step = "compress.output" if compress is not None else "train.output"
        problems.append(f"{step}: {final!r} is not {spec.repo}, the repo of the alias the loop moves")
    if compress is None and method(train.method).is_adapter and train.output == spec.repo:
        problems.append(
            f"train.method: {train.method} makes an adapter; to promote it into the model repo {spec.repo}, "
            "add a compress step (it merges and exports), or train a method that makes a model (full, probe)"
        )
    return problems
