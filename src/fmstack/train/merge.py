"""Merging adapters into their base weights, for compress and serve.

LoRA and IA3 fold into the base (PEFT ``merge_and_unload``) and come back as a plain transformers
model; bottleneck adapters and prefixes cannot (they add computation the base does not have) and
raise ``fmstack.errors.Unsupported`` with a message saying so. Model versions come back unchanged.
"""

from __future__ import annotations

from dataclasses import replace

from fmstack.train import registry
from fmstack.train.inference import Loaded


def merge(loaded: Loaded) -> Loaded:
    if loaded.kind != "adapter" or loaded.merged or loaded.method is None:
        return loaded
    merged = registry.method(loaded.method).merge(loaded.model)
    return replace(loaded, model=merged.eval(), merged=True)
