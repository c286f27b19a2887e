"""What a compression does: ``CompressSpec``, the one schema that the CLI and Python callers fill in.

Every problem in a spec is collected and reported at once (``check``), so a user fixes all of them in
one pass. The spec is stored with the hub run, so a compressed version says exactly how it was made.
"""

from __future__ import annotations

import difflib
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic_core import ErrorDetails

from fmstack.errors import InvalidInput, clip

Quantize = Literal["none", "int8"]
Calibration = Literal["dynamic", "static"]
Structured = Literal["heads", "ffn"]

DEFAULT_MAX_DROP = 1.0  # points, when eval data is given and no limit is


class CompressSpec(BaseModel):
    """How to compress one model version. Field docs are the CLI's ``--help`` (``cli/spec_options.py``
    turns each field into an option), and a ``--spec`` YAML file holds the same fields."""

    model_config = ConfigDict(extra="forbid")
    schema_version: Literal[1] = 1
    export: Literal["onnx"] = Field("onnx", description="Output format; onnx is the only one.")
    optimize: bool = Field(True, description="Fuse attention/LayerNorm/GELU with ONNX Runtime's optimizer.")
    quantize: Quantize = Field("none", description="Weight quantisation of the ONNX graph.")
    calibration: Calibration = Field(
        "dynamic",
        description="int8 activation scales: 'dynamic' computes them per batch at run time; 'static' fixes "
        "them from calibration texts.",
    )
    per_channel: bool = Field(
        True, description="One int8 scale per output channel (per-tensor loses accuracy)."
    )
    calibration_data: str | None = Field(
        None, description="Dataset ref whose texts calibrate static int8 (default: the eval data)."
    )
    calibration_samples: int = Field(
        128, ge=8, le=10_000, description="At most this many texts calibrate static int8."
    )
    prune: float = Field(
        0.0, ge=0.0, lt=1.0, description="Fraction of weights, heads or FFN neurons to remove."
    )
    structured: Structured | None = Field(
        None, description="Remove whole attention heads or FFN neurons (smaller, faster); default: magnitude."
    )
    eval_data: str | None = Field(None, description="Dataset ref to measure accuracy / cosine similarity on.")
    eval_split: str | None = Field(
        None, description="Split of the eval data (default: test, else validation, else train)."
    )
    eval_limit: int = Field(
        1000, ge=1, description="At most this many eval rows (a seeded sample, stratified by label)."
    )
    max_accuracy_drop: float | None = Field(
        None,
        ge=0.0,
        description=f"Refuse to register when quality drops more than this many points (default {DEFAULT_MAX_DROP} "
        "with eval data).",
    )
    force: bool = Field(False, description="Register even when the drop exceeds --max-accuracy-drop.")
    output: str | None = Field(None, description="Repo NS/NAME of the result (default: <parent repo>-onnx).")
    latency_runs: int = Field(
        20,
        ge=1,
        le=1000,
        description="Timed runs at batch 1, a quarter as many at batch 32 (median reported).",
    )
    # One thread by default: with more, torch's OpenMP threads wait on each other whenever another process
    # holds a core, and a shared machine then reports batch-1 forwards 20-50x slower than they are.
    threads: int = Field(
        1, ge=0, description="Threads for torch and ONNX Runtime while measuring (0: all cores)."
    )

    def check(self) -> None:
        """Raise one ``InvalidInput`` naming every inconsistent combination."""
        problems = []
        if self.calibration == "static" and self.quantize != "int8":
            problems.append("static calibration needs --quantize int8")
        if self.calibration == "static" and not (self.calibration_data or self.eval_data):
            problems.append("static int8 needs calibration texts: give --calibration-data or --eval-data")
        if self.calibration_data is not None and self.calibration != "static":
            problems.append("--calibration-data is only read by static int8: add --static-calibration")
        if self.structured is not None and self.prune == 0.0:
            problems.append(f"--structured {self.structured} needs --prune FRACTION > 0")
        if self.max_accuracy_drop is not None and self.eval_data is None:
            problems.append("--max-accuracy-drop needs --eval-data to measure the drop on")
        if problems:
            raise InvalidInput("invalid compression spec: " + "; ".join(problems))

    @property
    def gate(self) -> float | None:
        """The accuracy-drop limit in points that applies, or None when nothing is measured."""
        if self.eval_data is None:
            return None
        return DEFAULT_MAX_DROP if self.max_accuracy_drop is None else self.max_accuracy_drop


def parse_spec(data: dict[str, object]) -> CompressSpec:
    """Validate a dict (from YAML or JSON) into a spec, with every problem in one message."""
    try:
        spec = CompressSpec.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(_problem(e) for e in exc.errors())
        raise InvalidInput(f"invalid compression spec: {problems}") from None
    spec.check()
    return spec


def _problem(error: ErrorDetails) -> str:
    where = ".".join(map(str, error["loc"])) or "spec"
    if error["type"] != "extra_forbidden":
        return f"{where}: {error['msg']}"
    # A misspelt field in a YAML spec file: name the field it probably is.
    close = difflib.get_close_matches(where, CompressSpec.model_fields, n=1, cutoff=0.6)
    hint = f"; did you mean {close[0]!r}?" if close else " (docs/compress.md lists the fields)"
    return f"{clip(where)}: not a compression spec field{hint}"
