"""Pruning of a BERT-like encoder before export.

- ``magnitude``: zero the smallest-|w| fraction of each encoder Linear weight (``torch.nn.utils.prune``).
  The tensors keep their shape, so the file only shrinks once compressed; it is the baseline.
- ``heads``: remove the least important attention heads of every layer (importance: L2 norm of the
  head's query/key/value rows and its slice of the output projection). Q/K/V lose rows, the output
  projection loses columns, so the graph really gets smaller and faster.
- ``ffn``: remove the least important intermediate neurons of every layer (importance: L2 norm of the
  neuron's input row times that of its output column): ``intermediate.dense`` loses rows,
  ``output.dense`` loses columns.

Every layer loses the same number of heads / neurons, so the pruned model keeps a uniform shape.
Structured pruning without fine-tuning afterwards costs accuracy; the report and the gate show how much.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from fmstack.errors import Unsupported


def _layers(model: nn.Module) -> list[Any]:
    """The transformer blocks of a BERT-like encoder (``*.encoder.layer``), under any head."""
    layers = next(
        (m for n, m in model.named_modules() if n.endswith("encoder.layer") and isinstance(m, nn.ModuleList)),
        None,
    )
    if layers is None:
        raise Unsupported(
            f"{type(model).__name__}: structured pruning supports BERT-like encoders (encoder.layer[i] "
            "with attention.self.query/key/value and intermediate.dense); use magnitude pruning instead"
        )
    return list(layers)


def _keep(scores: torch.Tensor, fraction: float) -> torch.Tensor:
    """Sorted indices of the entries to keep: all but the ``fraction`` lowest, at least one."""
    n = scores.numel()
    keep = max(1, n - math.floor(n * fraction))
    return torch.sort(torch.topk(scores, keep).indices).values


def _slice_linear(layer: nn.Linear, index: torch.Tensor, dim: int) -> nn.Linear:
    """A new Linear holding only ``index`` along ``dim`` (0: output rows, 1: input columns)."""
    weight = layer.weight.detach().index_select(dim, index).clone()
    bias = layer.bias.detach().clone() if layer.bias is not None else None
    if dim == 0 and bias is not None:
        bias = bias.index_select(0, index).clone()
    new = nn.Linear(weight.shape[1], weight.shape[0], bias=bias is not None)
    new.weight = nn.Parameter(weight)
    if bias is not None:
        new.bias = nn.Parameter(bias)
    return new


@torch.no_grad()
def prune_magnitude(model: nn.Module, fraction: float) -> dict[str, Any]:
    from torch.nn.utils import prune

    zeroed = total = 0
    for layer in _layers(model):
        for module in layer.modules():
            if isinstance(module, nn.Linear):
                prune.l1_unstructured(module, "weight", amount=fraction)  # type: ignore[no-untyped-call]
                prune.remove(module, "weight")  # type: ignore[no-untyped-call]  # make the zeros permanent, drop the mask
                zeroed += int((module.weight == 0).sum())
                total += module.weight.numel()
    return {"method": "magnitude", "sparsity": round(zeroed / max(total, 1), 4)}


@torch.no_grad()
def prune_heads(model: nn.Module, fraction: float) -> dict[str, Any]:
    kept_heads = before = 0
    for layer in _layers(model):
        attn = layer.attention.self
        heads, size = attn.num_attention_heads, attn.attention_head_size
        # per head: norms of its Q/K/V rows and its output-projection columns; (heads,)
        rows = [attn.query.weight, attn.key.weight, attn.value.weight]
        score = sum(w.view(heads, size, -1).pow(2).sum(dim=(1, 2)) for w in rows)
        out = layer.attention.output.dense.weight  # (hidden, heads * size)
        score = score + out.view(out.shape[0], heads, size).pow(2).sum(dim=(0, 2))
        keep = _keep(score, fraction)
        index = (keep[:, None] * size + torch.arange(size)[None, :]).reshape(-1)  # (kept * size,)
        attn.query = _slice_linear(attn.query, index, 0)
        attn.key = _slice_linear(attn.key, index, 0)
        attn.value = _slice_linear(attn.value, index, 0)
        layer.attention.output.dense = _slice_linear(layer.attention.output.dense, index, 1)
        attn.num_attention_heads = int(keep.numel())
        attn.all_head_size = int(keep.numel()) * size
        before, kept_heads = heads, int(keep.numel())
    return {"method": "heads", "heads_before": before, "heads_after": kept_heads}


@torch.no_grad()
def prune_ffn(model: nn.Module, fraction: float) -> dict[str, Any]:
    before = after = 0
    for layer in _layers(model):
        up, down = layer.intermediate.dense, layer.output.dense  # (inter, hidden), (hidden, inter)
        score = up.weight.norm(dim=1) * down.weight.norm(dim=0)  # (inter,)
        keep = _keep(score, fraction)
        layer.intermediate.dense = _slice_linear(up, keep, 0)
        layer.output.dense = _slice_linear(down, keep, 1)
        before, after = up.weight.shape[0], int(keep.numel())
    config = getattr(model, "config", None)
    if config is not None:
        config.intermediate_size = after
    return {"method": "ffn", "ffn_before": before, "ffn_after": after}


def attention_shape(model: nn.Module) -> tuple[int, int]:
    """(heads, heads * head size) of the first layer after pruning; every layer has the same."""
    attn = _layers(model)[0].attention.self
    return int(attn.num_attention_heads), int(attn.all_head_size)
