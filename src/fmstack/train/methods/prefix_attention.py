"""The layers of ``--method prefix`` (the plugin is ``prefix.py``): prefix tuning / P-tuning v2 for encoders: every self-attention layer attends to ``prefix_length``
learned key/value vectors before the real tokens. Written here because PEFT's prefix tuning fails on
BERT with transformers 5 (the cache argument was renamed).

Each ``*SelfAttention`` module with query/key/value projections is wrapped; the wrapper computes
attention itself (scaled dot-product) with the prefix keys/values prepended and the attention mask
widened to let every token see the prefix. The prefixes and the task head train; the base is frozen.
Prefixes change the attention itself, so they cannot be merged into the base weights. Saved like
bottleneck adapters (``fmstack_method.json``, no ``adapter_config.json``): no standard tool runs them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from fmstack.errors import Unsupported
from fmstack.train.methods import bottleneck as adapter_files
from fmstack.train.methods.heads import freeze_all_but_heads
from fmstack.train.pooled import encoder_type


class PrefixSelfAttention(nn.Module):
    def __init__(self, inner: Any, length: int) -> None:
        super().__init__()
        self.inner = inner
        hidden = inner.num_attention_heads * inner.attention_head_size
        self.prefix_key = nn.Parameter(torch.randn(length, hidden) * 0.02)
        self.prefix_value = nn.Parameter(torch.randn(length, hidden) * 0.02)

    def forward(
        self, hidden_states: torch.Tensor, attention_mask: torch.Tensor | None = None, **kwargs: Any
    ) -> tuple[torch.Tensor, None]:
        inner: Any = self.inner
        batch, seq, _ = hidden_states.shape
        heads, dim = inner.num_attention_heads, inner.attention_head_size

        def split(x: torch.Tensor) -> torch.Tensor:  # (batch, n, hidden) -> (batch, heads, n, dim)
            return x.view(x.shape[0], x.shape[1], heads, dim).transpose(1, 2)

        q = split(inner.query(hidden_states))
        prefix_k = self.prefix_key.to(q.dtype).expand(batch, -1, -1)  # (batch, prefix, hidden)
        prefix_v = self.prefix_value.to(q.dtype).expand(batch, -1, -1)
        k = split(torch.cat([prefix_k, inner.key(hidden_states)], dim=1))  # (batch, heads, prefix+seq, dim)
        v = split(torch.cat([prefix_v, inner.value(hidden_states)], dim=1))
        mask = _widen(attention_mask, self.prefix_key.shape[0], seq)
        out = nn.functional.scaled_dot_product_attention(
            q, k, v, attn_mask=mask, dropout_p=inner.dropout.p if self.training else 0.0, scale=inner.scaling
        )  # (batch, heads, seq, dim)
        return out.transpose(1, 2).reshape(batch, seq, heads * dim), None


def _widen(mask: torch.Tensor | None, prefix: int, seq: int) -> torch.Tensor | None:
    """Prepend ``prefix`` always-visible key positions to a 4D mask (boolean keep-mask or additive)."""
    if mask is None:
        return None
    if mask.dim() != 4:
        raise Unsupported(f"prefix tuning expects a 4D attention mask, got shape {tuple(mask.shape)}")
    shape = (*mask.shape[:-1], prefix)
    visible = (
        torch.ones(shape, dtype=torch.bool, device=mask.device)
        if mask.dtype == torch.bool
        else torch.zeros(shape, dtype=mask.dtype, device=mask.device)
    )
    return torch.cat([visible, mask], dim=-1)  # (batch, 1, seq or 1, prefix+seq)


def _inject(model: nn.Module, length: int) -> None:
    targets = [
        n
        for n, m in model.named_modules()
        if type(m).__name__.endswith("SelfAttention")
        and all(hasattr(m, p) for p in ("query", "key", "value"))
    ]
    if not targets:
        family = encoder_type(getattr(model, "config", None)) or type(model).__name__
        raise Unsupported(
            f"prefix tuning supports encoders with query/key/value self-attention (BERT-likes); this "
            f"{family} model has none: use --method lora, ia3 or adapter"
        )
    for target in targets:
        parent_name, _, child = target.rpartition(".")
        parent = model.get_submodule(parent_name)
        setattr(parent, child, PrefixSelfAttention(getattr(parent, child), length))


def _freeze(model: nn.Module) -> None:
    freeze_all_but_heads(model)
    for module in model.modules():
        if isinstance(module, PrefixSelfAttention):
            module.prefix_key.requires_grad_(True)
            module.prefix_value.requires_grad_(True)


def apply(model: nn.Module, prefix_length: int) -> nn.Module:
    _inject(model, prefix_length)
    _freeze(model)
    model.fmstack_adapter_config = {"method": "prefix", "prefix_length": prefix_length}  # type: ignore[assignment]
    return model


def save(model: nn.Module, folder: Path) -> None:
    adapter_files.save_files(model, folder, "prefixes")


def load(model: nn.Module, folder: Path) -> nn.Module:
    config = adapter_files.read_config(folder)
    _inject(model, int(config["prefix_length"]))
    _freeze(model)
    model.fmstack_adapter_config = config  # type: ignore[assignment]
    adapter_files.load_weights(model, folder)
    return model
