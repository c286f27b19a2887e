"""Adapter versions (LoRA, IA3: PEFT folders + ``fmstack_adapter.json``) sharing one base in memory.

Every adapter served on the same base version (same task and labels) is one named adapter of a single
``PeftModel``: N adapters cost one base plus N small weight sets. The model answers for one adapter at
a time, so each batch takes the base's lock and ``set_adapter``s its own before the forward pass;
batches of different adapters interleave, batches of one adapter stay whole.

The first adapter of a base is loaded with ``fmstack.train.inference.load`` (the training package
knows how its task models are built and seeded); later ones join it with ``PeftModel.load_adapter``.
Adapters that PEFT cannot load (``format: fmstack``: bottleneck adapters, prefix tuning) get their own
copy of the base.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from fmstack.errors import InvalidInput, Unsupported
from fmstack.hub import Hub, VersionInfo
from fmstack.servable import ServableModel
from fmstack.serve.runtimes.base import RuntimeInfo
from fmstack.serve.runtimes.pytorch import torch_forward
from fmstack.serve.runtimes.tokenizer import TextEncoder

if TYPE_CHECKING:
    import torch

_SERVABLE_TASKS = ("classification", "embedding")


@dataclass(frozen=True)
class BaseKey:
    """Adapters can share a base when all of this is equal: the task model built on the base (a
    classifier's head module depends on the pooling and head kind, its size on the labels)."""

    base: str  # exact base version, ns/name:N
    task: str
    labels: tuple[str, ...]
    multi_label: bool
    pooling: str
    head: str


@dataclass(eq=False)
class SharedBase:
    model: torch.nn.Module  # a PeftModel holding every adapter in ``adapters``
    encoder: TextEncoder
    shareable: bool  # False for adapters that PEFT cannot load next to others
    lock: threading.Lock = field(default_factory=threading.Lock)
    adapters: set[str] = field(default_factory=set)


class AdapterRuntime:
    """One adapter of a shared base; satisfies ``runtimes.base.Runtime``."""

    def __init__(
        self,
        pool: AdapterPool,
        key: BaseKey,
        shared: SharedBase,
        name: str,
        descriptor: ServableModel,
        dims: int,
    ) -> None:
        self.pool, self.key, self.shared, self.adapter = pool, key, shared, name
        self._descriptor = descriptor
        self._info = RuntimeInfo(
            task=descriptor.task,
            platform="pytorch+peft",
            max_length=descriptor.max_length,
            labels=tuple(descriptor.labels),
            multi_label=descriptor.multi_label,
            dimensions=dims if descriptor.task == "embedding" else 0,
            base=key.base,
        )

    @property
    def info(self) -> RuntimeInfo:
        return self._info

    def encode(self, texts: Sequence[str]) -> list[list[int]]:
        return self.shared.encoder.encode(texts)

    def forward(self, batch: Sequence[Sequence[int]]) -> NDArray[np.float32]:
        with self.shared.lock:
            if self.shared.shareable:
                self.shared.model.set_adapter(self.adapter)  # type: ignore[operator]
            return torch_forward(self.shared.model, self.shared.encoder, self._descriptor, batch)

    def close(self) -> None:
        self.pool.release(self.key, self.adapter)


class AdapterPool:
    """The bases in memory and the adapters on each; one pool per server."""

    def __init__(self) -> None:
        self._bases: dict[BaseKey, SharedBase] = {}
        self._lock = threading.Lock()  # guards _bases; loading holds it so two loads never race

    @property
    def bases(self) -> int:
        return len(self._bases)

    def load(self, hub: Hub, version: VersionInfo, folder: Path, threads: int | None) -> AdapterRuntime:
        from fmstack.train.descriptor import read_adapter

        desc = read_adapter(folder)
        if desc is None:
            raise InvalidInput(
                f"{version.ref} is an adapter without fmstack_adapter.json: not written by fmstack train"
            )
        if desc.task not in _SERVABLE_TASKS:
            raise Unsupported(
                f"{version.ref} is a {desc.task} adapter; the server serves classification and embedding"
            )
        descriptor = ServableModel(
            format="pytorch",
            task=desc.task,
            labels=desc.labels,
            multi_label=desc.multi_label,
            pooling=desc.pooling,
            normalize=desc.normalize,
            max_length=desc.max_length,
        )
        shareable = desc.format == "peft"
        # An unshareable adapter gets a key of its own, hence a base of its own.
        key = BaseKey(
            desc.base if shareable else version.ref,
            desc.task,
            tuple(desc.labels),
            desc.multi_label,
            desc.pooling,
            desc.head,
        )
        name = re.sub(r"\W", "_", version.ref)  # PEFT adapter names become module names: no '.', '/', ':'
        with self._lock:
            shared = self._bases.get(key)
            if shared is None:
                shared = self._load_base(hub, version.ref, desc.base, name, shareable, threads)
                self._bases[key] = shared
            else:
                from fmstack.train.methods.peft_common import check_loaded

                with shared.lock:
                    shared.model.load_adapter(str(folder), adapter_name=name)  # type: ignore[operator]
                    try:
                        check_loaded(shared.model, folder, name)  # type: ignore[arg-type]
                    except InvalidInput:
                        shared.model.delete_adapter(name)  # type: ignore[operator]  # the others keep serving
                        raise
            shared.adapters.add(name)
        dims = int(getattr(getattr(shared.model, "config", None), "hidden_size", 0) or 0)
        return AdapterRuntime(self, key, shared, name, descriptor, dims)

    def _load_base(
        self, hub: Hub, ref: str, base: str, name: str, shareable: bool, threads: int | None
    ) -> SharedBase:
        import torch

        from fmstack.train.inference import load

        if threads:
            torch.set_num_threads(threads)
        loaded = load(hub, ref)
        model: Any = loaded.model
        if shareable:  # PEFT names the first adapter "default"; name it after its version like the others
            # The same files ``load`` just checked (as "default"), under the version's name.
            model.load_adapter(str(hub.checkout(ref)), adapter_name=name)
            model.set_adapter(name)
            model.delete_adapter("default")
        return SharedBase(model.eval(), TextEncoder.from_folder(hub.checkout(base)), shareable)

    def release(self, key: BaseKey, name: str) -> None:
        """Unload one adapter; the base goes with its last adapter."""
        with self._lock:
            shared = self._bases.get(key)
            if shared is None:
                return
            with shared.lock:
                shared.adapters.discard(name)
                if not shared.adapters:
                    del self._bases[key]
                elif shared.shareable:
                    shared.model.set_adapter(next(iter(shared.adapters)))  # type: ignore[operator]
                    shared.model.delete_adapter(name)  # type: ignore[operator]
