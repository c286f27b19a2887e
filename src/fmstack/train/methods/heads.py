"""Which parameters of a task model are its task head (trained by every parameter-efficient method)."""

from __future__ import annotations

from torch import nn

HEAD_NAMES = ("classifier", "score")  # the names Hugging Face gives classification heads


def head_modules(model: nn.Module) -> dict[str, nn.Module]:
    return {
        name: getattr(model, name) for name in HEAD_NAMES if isinstance(getattr(model, name, None), nn.Module)
    }


def freeze_all_but_heads(model: nn.Module) -> None:
    model.requires_grad_(False)
    for head in head_modules(model).values():
        head.requires_grad_(True)


def trainable_state(model: nn.Module) -> dict[str, object]:
    """The trainable parameters by name, contiguous copies (safetensors refuses shared storage)."""
    return {n: p.detach().contiguous().clone() for n, p in model.named_parameters() if p.requires_grad}
