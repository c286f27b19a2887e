"""``fmstack.json``, the descriptor ``fmstack compress`` writes next to ``model.onnx``, read without pydantic.

The fields and defaults mirror ``fmstack.servable.ServableModel`` (this distribution must not import
fmstack); an unknown field is refused, as there, so a newer descriptor is never half understood.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, cast

from fmstack_edge.errors import BadBundle

DESCRIPTOR = "fmstack.json"
_FIELDS = {
    "schema_version",
    "format",
    "task",
    "file",
    "labels",
    "multi_label",
    "pooling",
    "normalize",
    "max_length",
    "inputs",
    "output",
    "fallback_threshold",
}
KNOWN_INPUTS = {"input_ids", "attention_mask", "token_type_ids"}


@dataclass(frozen=True)
class Descriptor:
    task: Literal["classification", "embedding"]
    file: str = "model.onnx"
    labels: tuple[str, ...] = ()
    multi_label: bool = False
    pooling: Literal["mean", "cls"] = "mean"
    normalize: bool = True
    max_length: int = 256
    inputs: tuple[str, ...] = ("input_ids", "attention_mask")
    output: str = "logits"
    # classification: answer fallback: true when the top score is below this (None: never), as fmstack serve
    fallback_threshold: float | None = None


def read_descriptor(folder: Path) -> Descriptor:
    path = folder / DESCRIPTOR
    try:
        raw = json.loads(path.read_text())
    except FileNotFoundError:
        raise BadBundle(f"{folder}: no {DESCRIPTOR}; a bundle holds the files of an ONNX version") from None
    except (OSError, ValueError) as exc:
        raise BadBundle(f"{path}: not readable JSON ({exc})") from None
    return parse_descriptor(raw, str(path))


def parse_descriptor(raw: object, where: str) -> Descriptor:
    problems: list[str] = []
    if not isinstance(raw, dict):
        raise BadBundle(f"{where}: expected a JSON object")
    unknown = sorted(set(raw) - _FIELDS)
    if unknown:
        problems.append(f"unknown fields {unknown} (a newer fmstack? upgrade fmstack-edge)")
    if raw.get("schema_version", 1) != 1:
        problems.append(f"schema_version {raw.get('schema_version')!r}; this runtime reads 1")
    if raw.get("format") != "onnx":
        problems.append(f"format {raw.get('format')!r}; the edge runtime runs 'onnx' versions only")
    task = raw.get("task")
    if task not in ("classification", "embedding"):
        problems.append(f"task {task!r}; expected 'classification' or 'embedding'")
    labels = raw.get("labels", [])
    if task == "classification" and not labels:
        problems.append("a classification descriptor needs its labels")
    if raw.get("pooling", "mean") not in ("mean", "cls"):
        problems.append(f"pooling {raw.get('pooling')!r}; expected 'mean' or 'cls'")
    unknown_inputs = set(raw.get("inputs", [])) - KNOWN_INPUTS
    if unknown_inputs:
        problems.append(
            f"graph inputs {sorted(unknown_inputs)} cannot be filled; known: {sorted(KNOWN_INPUTS)}"
        )
    if problems:
        raise BadBundle(f"{where}: " + "; ".join(problems))
    return Descriptor(
        task=cast(Literal["classification", "embedding"], task),
        file=str(raw.get("file", "model.onnx")),
        labels=tuple(str(x) for x in labels),
        multi_label=bool(raw.get("multi_label", False)),
        pooling=cast(Literal["mean", "cls"], raw.get("pooling", "mean")),
        normalize=bool(raw.get("normalize", True)),
        max_length=int(raw.get("max_length", 256)),
        inputs=tuple(raw.get("inputs", ("input_ids", "attention_mask"))),
        output=str(raw.get("output", "logits")),
        fallback_threshold=None
        if raw.get("fallback_threshold") is None
        else float(raw["fallback_threshold"]),
    )
