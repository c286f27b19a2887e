"""Torch -> ONNX with dynamic batch and sequence axes, through ``torch.onnx.export(dynamo=True)``.

Optimum's exporter pins transformers < 4.58, so the export is done here with torch's own exporter.
The graph takes ``input_ids`` and ``attention_mask`` (int64, (batch, seq)) and returns ``logits``
(batch, labels) for classifiers or ``last_hidden_state`` (batch, seq, hidden) for embedding models;
pooling is the runtime's job, described in ``fmstack.json``.
"""

from __future__ import annotations

import contextlib
import io
import logging
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from torch.export import Dim

from fmstack.compress.source import Parent
from fmstack.errors import Unsupported
from fmstack.train.pooled import PooledEncoderForSequenceClassification, encoder_type

INPUTS = ["input_ids", "attention_mask"]
# Encoders whose forward accepts a ready 4D additive mask and passes it through unchanged.
MASK4D_TYPES = {"bert", "roberta", "xlm-roberta", "electra", "camembert"}


def output_name(parent: Parent) -> str:
    return "logits" if parent.task == "classification" else "last_hidden_state"


class _Graph(torch.nn.Module):
    """The traced function: two int64 inputs in, one float tensor out.

    For BERT-like encoders the additive mask is built here as ``Where(Cast(1 - Expand(mask)), min, 0)``,
    the shape ONNX Runtime's attention fusion recognises; transformers' own mask code (vmap, And,
    GatherND) is not recognised and would leave attention unfused, several times slower.
    """

    def __init__(self, model: torch.nn.Module, output: str, mask4d: bool) -> None:
        super().__init__()
        self.model = model
        self.output = output
        self.mask4d = mask4d

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        mask: torch.Tensor = attention_mask
        if self.mask4d:
            seq = attention_mask.shape[1]
            # (batch, seq) -> (batch, 1, seq, seq): 0 where a key may be attended, float min where padded
            keys = attention_mask.unsqueeze(1).unsqueeze(2).expand(-1, 1, seq, seq)
            mask = torch.where((1 - keys).bool(), torch.finfo(torch.float32).min, 0.0)
        if isinstance(self.model, PooledEncoderForSequenceClassification):  # pools with the 2D mask
            hidden = self.model.encoder(input_ids=input_ids, attention_mask=mask).last_hidden_state
            return self.model.classify(hidden, attention_mask)
        out = self.model(input_ids=input_ids, attention_mask=mask)
        result: torch.Tensor = getattr(out, self.output)
        return result


@contextlib.contextmanager
def _eager_attention(model: torch.nn.Module) -> Iterator[None]:
    """Trace with the explicit (eager) attention math, whose ONNX form ONNX Runtime can fuse; restore after.

    Every transformers model inside is switched (a pooled classifier's encoder has a config of its own).
    """
    switched: list[tuple[Any, str]] = []
    for module in model.modules():
        before = getattr(getattr(module, "config", None), "_attn_implementation", None)
        setter = getattr(module, "set_attn_implementation", None)
        if setter is not None and before not in (None, "eager"):
            setter("eager")
            switched.append((setter, before))
    try:
        yield
    finally:
        for setter, before in switched:
            setter(before)


def export_onnx(parent: Parent, dest: Path) -> Path:
    """Write ``dest`` (an .onnx file) from the parent's torch model; return it."""
    model_type = encoder_type(getattr(parent.model, "config", None))
    graph = _Graph(parent.model, output_name(parent), model_type in MASK4D_TYPES).eval()
    # Example inputs: batch 2, seq 8, so neither axis is specialised to 1 by the tracer.
    example = parent.tokenizer(
        ["an example input", "a second, longer example input"],
        padding="max_length",
        max_length=8,
        truncation=True,
        return_tensors="pt",
    )
    args = (example["input_ids"], example["attention_mask"])
    # The exporter warns, once per op, that torchvision's detection ops cannot be registered; text
    # models never use them, and the warnings would land in the middle of `fmstack compress` output.
    logging.getLogger("torch.onnx._internal.exporter._registration").setLevel(logging.ERROR)
    batch, seq = Dim("batch"), Dim("sequence")
    shapes = {"input_ids": {0: batch, 1: seq}, "attention_mask": {0: batch, 1: seq}}
    try:
        with (
            _eager_attention(parent.model),
            torch.no_grad(),
            warnings.catch_warnings(),
            contextlib.redirect_stdout(io.StringIO()),  # progress lines; stdout belongs to --json
        ):
            warnings.simplefilter("ignore")
            program = torch.onnx.export(
                graph,
                args,
                input_names=INPUTS,
                output_names=[output_name(parent)],
                dynamic_shapes=shapes,
                dynamo=True,
                # torch's own graph optimiser merges the mask's Unsqueezes, which hides the pattern
                # ONNX Runtime's fusion looks for; ``optimize_graph`` does the optimisation instead.
                optimize=False,
                verbose=False,
            )
    except Exception as exc:  # the exporter raises many types; all mean "this model does not trace"
        raise Unsupported(f"{parent.ref}: ONNX export failed ({type(exc).__name__}: {exc})") from exc
    if program is None:
        raise Unsupported(f"{parent.ref}: ONNX export produced no program")
    program.save(str(dest), external_data=False)
    _strip(dest)
    return dest


def _strip(path: Path) -> None:
    """Drop what the exporter records for debugging: per-node stack traces and names of torch
    modules (``metadata_props``, ``doc_string``) and intermediate shapes (``value_info``). They can
    outweigh a small model's weights, and the recorded shapes go stale once nodes are fused."""
    import onnx

    model = onnx.load(str(path))
    for node in model.graph.node:
        del node.metadata_props[:]
        node.doc_string = ""
    del model.graph.value_info[:]
    onnx.save(model, str(path))
