"""Any model version loaded for ``fmstack eval``, ONNX versions included.

Training's ``load`` knows torch versions; an ONNX version (written by compress) is loaded here as a
module whose forward answers like the Hugging Face model it was exported from (``.logits`` or
``.last_hidden_state``), so training's task metrics score it exactly as they score its parent.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn
from transformers.modeling_outputs import BaseModelOutput, SequenceClassifierOutput

from fmstack.compress.runners import OnnxRunner
from fmstack.hub import HubApi
from fmstack.servable import ServableModel, read_descriptor
from fmstack.train.inference import Loaded, load
from fmstack.train.prepare import load_tokenizer


class OnnxModule(nn.Module):
    def __init__(self, path: Path, descriptor: ServableModel) -> None:
        super().__init__()
        self.runner = OnnxRunner(path, descriptor)

    def forward(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor, **extra: torch.Tensor
    ) -> BaseModelOutput | SequenceClassifierOutput:
        given = {"input_ids": input_ids, "attention_mask": attention_mask, **extra}
        batch = {
            name: (given[name] if name in given else torch.zeros_like(input_ids)).numpy().astype("int64")
            for name in self.runner.descriptor.inputs
        }
        out = torch.from_numpy(self.runner.graph_output(batch))
        if self.runner.descriptor.task == "classification":
            return SequenceClassifierOutput(logits=out)
        return BaseModelOutput(last_hidden_state=out)


def load_version(hub: HubApi, ref: str) -> Loaded:
    """``fmstack.train.inference.load``, and ONNX versions run by ONNX Runtime."""
    version = hub.resolve(ref)
    if version.kind != "model":
        return load(hub, version.ref)
    folder = hub.checkout(version.ref)
    descriptor = read_descriptor(folder)
    if descriptor is None or descriptor.format != "onnx":
        return load(hub, version.ref)
    return Loaded(
        model=OnnxModule(folder / descriptor.file, descriptor).eval(),
        tokenizer=load_tokenizer(folder),
        task=descriptor.task,
        labels=descriptor.labels,
        multi_label=descriptor.multi_label,
        pooling=descriptor.pooling,
        normalize=descriptor.normalize,
        max_length=descriptor.max_length,
        ref=version.ref,
        kind="model",
        method=None,
        base=None,
    )
