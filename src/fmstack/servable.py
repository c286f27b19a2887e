"""The descriptor of a servable model version, ``fmstack.json``, written next to the weights.

Training writes it into classification and embedding model versions (``format: pytorch``), compression
into every ONNX version (``format: onnx``, with ``model.onnx``); the server reads it to know how to run
a version without guessing. It sits outside the layers (like ``errors``) because all three share it,
and it imports nothing heavy, so torch-free runtimes can read it. A plain Hugging Face folder without it is served by
the PyTorch runtime, which infers the task from ``config.json``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

from fmstack.errors import InvalidInput

DESCRIPTOR = "fmstack.json"
Schema = TypeVar("Schema", bound=BaseModel)


class ServableModel(BaseModel):
    model_config = ConfigDict(extra="forbid")
    schema_version: Literal[1] = 1
    format: Literal["onnx", "pytorch"]
    task: Literal["classification", "embedding"]
    file: str = "model.onnx"  # the weights file for `onnx`
    labels: list[str] = []  # classification: index -> label
    multi_label: bool = False
    pooling: Literal["mean", "cls"] = "mean"  # embedding: how token states become one vector
    normalize: bool = True  # embedding: L2-normalise the pooled vector
    max_length: int = 256
    inputs: list[str] = ["input_ids", "attention_mask"]  # ONNX graph input names, in order
    output: str = "logits"  # ONNX graph output to read: logits (classification) or last_hidden_state
    # classification: /v1/classify answers fallback: true when the top score is below this (a request
    # for a human); chosen on validation data by `fmstack recipe intents`. None: never.
    fallback_threshold: float | None = None


def read_descriptor(folder: Path) -> ServableModel | None:
    return read_json_model(folder / DESCRIPTOR, ServableModel)


def write_descriptor(folder: Path, descriptor: ServableModel) -> None:
    write_json_model(folder / DESCRIPTOR, descriptor)


def read_json_model(path: Path, schema: type[Schema]) -> Schema | None:
    """A descriptor file parsed as ``schema``; None when it does not exist (shared with train's
    adapter descriptor)."""
    if not path.is_file():
        return None
    try:
        return schema.model_validate_json(path.read_text())
    except ValidationError as exc:
        raise InvalidInput(f"{path}: not a valid descriptor: {exc}") from None


def write_json_model(path: Path, descriptor: BaseModel) -> None:
    path.write_text(descriptor.model_dump_json(indent=2) + "\n")
