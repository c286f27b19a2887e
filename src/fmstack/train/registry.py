"""The registries of training tasks and methods: plain dicts, one line per entry.

Adding a method = one module under ``methods/`` (``methods/__init__.py`` lists what it declares) + one
line here + its name in ``spec.MethodName``; the contract tests in ``tests/train/test_registry.py``
then run it over every task it declares. A task is one module under ``tasks/`` in the same way
(``tasks/__init__.py``). Neither kind loads torch at import, so the spec consults them before the
heavy libraries load.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from types import ModuleType
from typing import Any, Protocol

from fmstack.errors import InvalidInput
from fmstack.train.methods import adapter, full, ia3, lora, prefix, probe, setfit
from fmstack.train.tasks import classification, clm, embedding, mlm


class Method(Protocol):
    """What a method module declares (``methods/__init__.py`` says what each one means)."""

    # Read-only: a module's constants satisfy these.
    @property
    def name(self) -> str: ...
    @property
    def is_adapter(self) -> bool: ...
    @property
    def adapter_format(self) -> str | None: ...
    @property
    def tasks(self) -> tuple[str, ...]: ...
    @property
    def default_lr(self) -> float: ...
    @property
    def default_head_lr(self) -> float | None: ...
    @property
    def options(self) -> tuple[str, ...]: ...

    def rules(self, values: Mapping[str, Any]) -> list[str]: ...
    def flops_per_token(self, weights: float, trainable: int, attention: float) -> float: ...
    def training_view(
        self,
        model: Any,
        rows: list[Any],
        eval_rows: list[Any],
        collate: Callable[..., Any],
        device: Any,
        spec: Any,
    ) -> tuple[Any, list[Any], list[Any]]: ...
    def apply(self, model: Any, spec: Any, task: Any) -> Any: ...
    def save(self, model: Any, folder: Path) -> None: ...
    def load(self, model: Any, folder: Path) -> Any: ...
    def merge(self, model: Any) -> Any: ...


METHODS: dict[str, Method] = {
    "probe": probe,
    "full": full,
    "lora": lora,
    "ia3": ia3,
    "adapter": adapter,
    "prefix": prefix,
    "setfit": setfit,
}


# Task modules are handed around as modules (``prepare.Prepared.task``); ``tasks/__init__.py`` lists
# what each one declares and the contract tests check it.
TASKS: dict[str, ModuleType] = {
    "classification": classification,
    "embedding": embedding,
    "mlm": mlm,
    "clm": clm,
}


def task(name: str) -> ModuleType:
    if name not in TASKS:
        raise InvalidInput(f"unknown task {name!r} (known: {', '.join(TASKS)})")
    return TASKS[name]


def method(name: str) -> Method:
    if name not in METHODS:
        raise InvalidInput(f"unknown method {name!r} (known: {', '.join(METHODS)})")
    return METHODS[name]


def tasks_reading(option: str) -> tuple[str, ...]:
    """The tasks that declare the spec field ``option`` among their options, in registry order."""
    return tuple(name for name, t in TASKS.items() if option in t.options)


def methods_reading(option: str) -> tuple[str, ...]:
    """The methods that declare the spec field ``option`` among their options, in registry order."""
    return tuple(name for name, m in METHODS.items() if option in m.options)


def methods_for(task_name: str) -> tuple[str, ...]:
    """The methods that declare ``task_name`` among their tasks, in registry order."""
    return tuple(name for name, m in METHODS.items() if task_name in m.tasks)
