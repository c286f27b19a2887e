"""The layers of ``--method adapter`` (the plugin is ``adapter.py``): bottleneck adapters (Houlsby: after the attention and the feed-forward sublayers; Pfeiffer: after the
feed-forward sublayer only), written here because PEFT has none and the ``adapters`` package pins
transformers 4.

An adapter wraps a sublayer's output projection: ``y = proj(x); y + up(gelu(down(y)))``, with ``up``
zero-initialised so training starts from the base model exactly. The adapters and the task head train;
everything else is frozen. Saved as ``fmstack_method.json`` + ``adapter_model.safetensors``.
Adapters are non-linear, so they cannot be merged into the base weights.

No standard tool has these layers, so the folder has no ``adapter_config.json``: PEFT (and
transformers' adapter loading) then say plainly that this is not a PEFT adapter, instead of failing
on missing keys or half-loading it. Versions saved before used that name; ``read_config`` reads both.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from fmstack.errors import InvalidInput, Unsupported
from fmstack.train.methods.heads import freeze_all_but_heads, trainable_state

# Output projections of the attention and feed-forward sublayers (BERT-like, GPT-2).
ATTENTION_OUT = re.compile(r"(attention\.output\.dense|attn\.c_proj)$")
FFN_OUT = re.compile(r"(layer\.\d+\.output\.dense|mlp\.c_proj)$")
METHOD_CONFIG = "fmstack_method.json"  # also prefix tuning's
OLD_METHOD_CONFIG = "adapter_config.json"  # the name until versions could be read by PEFT users


class Bottleneck(nn.Module):
    def __init__(self, wrapped: nn.Module, hidden: int, size: int) -> None:
        super().__init__()
        self.wrapped = wrapped
        self.down = nn.Linear(hidden, size)
        self.up = nn.Linear(size, hidden)
        nn.init.normal_(self.down.weight, std=0.02)
        nn.init.zeros_(self.down.bias)
        nn.init.zeros_(self.up.weight)  # identity at the start
        nn.init.zeros_(self.up.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y: torch.Tensor = self.wrapped(x)  # (batch, seq, hidden)
        delta: torch.Tensor = self.up(nn.functional.gelu(self.down(y)))
        return y + delta


def _inject(model: nn.Module, adapter_type: str, size: int) -> int:
    config: Any = model.config
    hidden = int(config.hidden_size)
    patterns = [FFN_OUT] if adapter_type == "pfeiffer" else [ATTENTION_OUT, FFN_OUT]
    targets = [n for n, _ in model.named_modules() if any(p.search(n) for p in patterns)]
    if not targets:
        raise Unsupported(
            f"no attention/feed-forward output layers found in {type(model).__name__} for adapters"
        )
    for target in targets:
        parent_name, _, child = target.rpartition(".")
        parent = model.get_submodule(parent_name)
        setattr(parent, child, Bottleneck(getattr(parent, child), hidden, size))
    return len(targets)


def _freeze(model: nn.Module) -> None:
    freeze_all_but_heads(model)
    for module in model.modules():
        if isinstance(module, Bottleneck):
            module.down.requires_grad_(True)
            module.up.requires_grad_(True)


def apply(model: nn.Module, adapter_type: str, adapter_size: int) -> nn.Module:
    _inject(model, adapter_type, adapter_size)
    _freeze(model)
    model.fmstack_adapter_config = {
        "method": "adapter",
        "adapter_type": adapter_type,
        "adapter_size": adapter_size,
    }  # type: ignore[assignment]
    return model


def save(model: nn.Module, folder: Path) -> None:
    save_files(model, folder, "bottleneck adapters")


def save_files(model: nn.Module, folder: Path, what: str) -> None:
    """fmstack's adapter folder (also used by prefix tuning): the config the method set on the model
    and the trainable weights (the method's parameters and any trained head)."""
    config = getattr(model, "fmstack_adapter_config", None)
    if config is None:
        raise InvalidInput(f"this model has no {what} to save")
    (folder / METHOD_CONFIG).write_text(json.dumps(config, indent=2) + "\n")
    save_file(trainable_state(model), str(folder / "adapter_model.safetensors"))  # type: ignore[arg-type]


def read_config(folder: Path) -> dict[str, Any]:
    """The method's config from an adapter folder, as saved now or (as ``adapter_config.json``) before."""
    for name in (METHOD_CONFIG, OLD_METHOD_CONFIG):
        if (folder / name).is_file():
            config: dict[str, Any] = json.loads((folder / name).read_text())
            return config
    raise InvalidInput(f"{folder}: no {METHOD_CONFIG}; is this an adapter folder written by fmstack train?")


def load_weights(model: nn.Module, folder: Path) -> None:
    state = load_file(str(folder / "adapter_model.safetensors"))
    missing, unexpected = model.load_state_dict(state, strict=False)
    if unexpected:
        raise InvalidInput(f"adapter weights do not fit this base model: unexpected {unexpected[:3]}")
    trained = {n for n, p in model.named_parameters() if p.requires_grad}
    if trained & set(missing):
        raise InvalidInput(f"adapter weights are incomplete: missing {sorted(trained & set(missing))[:3]}")


def load(model: nn.Module, folder: Path) -> nn.Module:
    config = read_config(folder)
    _inject(model, config["adapter_type"], int(config["adapter_size"]))
    _freeze(model)
    model.fmstack_adapter_config = config  # type: ignore[assignment]
    load_weights(model, folder)
    return model
