"""The registries of training tasks and methods: plain dicts, one line per entry.

Adding a method = one module under ``methods/`` + one line here (the contract test in
``tests/train/test_registry.py`` then runs it over every task it supports).
"""

from __future__ import annotations

from types import ModuleType

from fmstack.errors import InvalidInput
from fmstack.train.methods import adapter, full, ia3, lora, prefix, probe
from fmstack.train.tasks import classification, clm, embedding, mlm

TASKS: dict[str, ModuleType] = {
    "classification": classification,
    "embedding": embedding,
    "mlm": mlm,
    "clm": clm,
}

METHODS: dict[str, ModuleType] = {
    "probe": probe,
    "full": full,
    "lora": lora,
    "ia3": ia3,
    "adapter": adapter,
    "prefix": prefix,
}


def task(name: str) -> ModuleType:
    if name not in TASKS:
        raise InvalidInput(f"unknown task {name!r} (known: {', '.join(TASKS)})")
    return TASKS[name]


def method(name: str) -> ModuleType:
    if name not in METHODS:
        raise InvalidInput(f"unknown method {name!r} (known: {', '.join(METHODS)})")
    return METHODS[name]
