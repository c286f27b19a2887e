"""The descriptor of an adapter version, ``fmstack_adapter.json``: which method made the adapter, on
which exact base version, for which task and labels, and where the head weights are. Written by train,
read by serve. (Model versions are described by ``fmstack.servable.ServableModel``, ``fmstack.json``,
which train, compress and serve share.)
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, model_validator

from fmstack.servable import read_json_model, write_json_model

ADAPTER_DESCRIPTOR = "fmstack_adapter.json"


class AdapterDescriptor(BaseModel):
    model_config = ConfigDict(extra="forbid")
    # 2: ``pooling`` also decides the classification head (mean: fmstack.train.pooled). Version 1
    # classifiers used the architecture's own Hugging Face head, which is pooling "cls" now.
    schema_version: Literal[1, 2] = 2
    method: Literal["lora", "ia3", "adapter", "prefix"]
    format: Literal["peft", "fmstack"]  # peft: PeftModel.from_pretrained loads it
    base: str  # exact base version, ns/name:N
    task: Literal["classification", "embedding", "mlm", "clm"]
    labels: list[str] = []
    multi_label: bool = False
    pooling: Literal["mean", "cls"] = "mean"
    head: Literal["linear", "cosine"] = "linear"  # classification with pooling mean: the head module
    normalize: bool = True
    max_length: int = 256
    head_file: str | None = None  # file holding the trained task head's weights, if any
    head_modules: list[str] = []  # their module names in the task model
    dataset: str | None = None
    # Seed that was set before building the task model: weights the base lacks and the adapter does
    # not store (e.g. a new MLM head transform) are re-created identically from it when loading.
    init_seed: int = 0

    @model_validator(mode="after")
    def _version_1_heads(self) -> AdapterDescriptor:
        if self.schema_version == 1 and self.task == "classification":
            self.pooling = "cls"
        return self


def write(folder: Path, name: str, descriptor: BaseModel) -> None:
    write_json_model(folder / name, descriptor)


def read_adapter(folder: Path) -> AdapterDescriptor | None:
    return read_json_model(folder / ADAPTER_DESCRIPTOR, AdapterDescriptor)
