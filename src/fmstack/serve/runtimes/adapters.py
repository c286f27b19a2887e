"""Adapter versions (LoRA, IA3: PEFT folders + ``fmstack_adapter.json``) sharing one base in memory.

Every adapter served on the same base version (same task and labels) is one named adapter of a single
``PeftModel``: N adapters cost one base plus N small weight sets. Each served adapter keeps its own
queue and batch worker (admission, limits and metrics stay per served model); the base computes one
forward pass at a time, and a pass may carry the batches of several LoRA adapters at once, each row
with its own adapter (PEFT's ``adapter_names=``). Batches that arrive while the base computes wait
and go together into its next pass (``SharedBase.forward``), within the server's batch limits, so
under load the base computes fewer, larger passes instead of one pass per adapter in turn (what that
saves: bench/README.md, serving adapters). Each adapter's batch is still formed from its own queue,
so batches of different lengths stay apart when joining them would break ``--min-batch-fill``.

Adapters PEFT cannot mix in one pass (IA3) take the base one batch at a time, after ``set_adapter``.
The first adapter of a base is loaded with ``fmstack.train.inference.load`` (the training package
knows how its task models are built and seeded); later ones join it with ``PeftModel.load_adapter``.
Adapters that PEFT cannot load (``format: fmstack``: bottleneck adapters, prefix tuning) get their own
copy of the base.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from fmstack.errors import InvalidInput, Unsupported
from fmstack.hub import HubApi, VersionInfo
from fmstack.servable import ServableModel
from fmstack.serve.batching import Limits
from fmstack.serve.runtimes.base import RuntimeInfo
from fmstack.serve.runtimes.pytorch import answers, raw_outputs
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
class _Pass:
    """One adapter's batch waiting for its base: done once a forward pass (its own or another
    adapter's thread's) has computed it."""

    adapter: str
    descriptor: ServableModel
    batch: Sequence[Sequence[int]]
    out: NDArray[np.float32] | None = None
    error: Exception | None = None
    done: bool = False

    @property
    def longest(self) -> int:
        return max(map(len, self.batch), default=0)


class SharedBase:
    """A base model and the adapters on it. One thread at a time holds the model (a forward pass, or
    loading and deleting an adapter); the batches that wait meanwhile join the next pass together."""

    def __init__(self, model: torch.nn.Module, encoder: TextEncoder, shareable: bool, limits: Limits | None):
        self.model = model  # a PeftModel holding every adapter in ``adapters``
        self.encoder = encoder
        self.shareable = shareable  # False for adapters that PEFT cannot load next to others
        self.limits = limits  # how large a pass of several adapters' batches may grow (None: any)
        self.adapters: set[str] = set()
        self.mixable: set[str] = set()  # adapters PEFT can mix with others in one pass (LoRA)
        self.active: str | None = None  # the adapter ``set_adapter`` made active
        self._cond = threading.Condition()  # guards everything below
        self._busy = False  # a thread holds the model
        self._waiting: list[_Pass] = []

    @property
    def waiting(self) -> int:
        """Batches waiting for the model."""
        return len(self._waiting)

    @contextmanager
    def exclusive(self) -> Iterator[None]:
        """Hold the model (to load or delete an adapter) once no pass computes."""
        with self._cond:
            while self._busy:
                self._cond.wait()
            self._busy = True
        try:
            yield
        finally:
            self._release()

    def forward(
        self, adapter: str, descriptor: ServableModel, batch: Sequence[Sequence[int]]
    ) -> NDArray[np.float32]:
        """``adapter``'s answers to ``batch``, computed in the base's next pass, which this thread runs
        itself unless another thread's pass took the batch along."""
        job = _Pass(adapter, descriptor, batch)
        group: list[_Pass] = []
        with self._cond:
            self._waiting.append(job)
            while self._busy and not job.done:
                self._cond.wait()
            if not job.done:  # the model is free: this thread runs the next pass
                self._busy = True
                group = self._take(job)
        if group:
            try:
                self._compute(group)
            finally:
                self._release()
        if job.error is not None:
            raise job.error
        if job.out is None:
            raise RuntimeError(f"adapter {adapter!r}: a pass marked its batch done without rows (a bug)")
        return job.out

    def _release(self) -> None:
        with self._cond:
            self._busy = False
            self._cond.notify_all()  # the threads whose batches were computed, and the next pass

    def _take(self, first: _Pass) -> list[_Pass]:
        """``first`` and the waiting batches that may join it (under ``_cond``), removed from the wait:
        other adapters' batches, oldest first, while the pass stays within the server's batch limits
        (texts, padded tokens, share of real tokens), as ``batching.next_batch`` keeps one queue's."""
        group = [first]
        if first.adapter in self.mixable:
            rows, longest, real = len(first.batch), first.longest, sum(map(len, first.batch))
            for job in self._waiting:
                if job is first or job.adapter not in self.mixable:
                    continue
                size, wider = rows + len(job.batch), max(longest, job.longest)
                tokens = real + sum(map(len, job.batch))
                if self.limits is not None and (
                    size > self.limits.max_size
                    or size * wider > self.limits.max_tokens
                    or tokens < self.limits.min_fill * size * wider
                ):
                    continue
                group.append(job)
                rows, longest, real = size, wider, tokens
        taken = set(map(id, group))
        self._waiting = [job for job in self._waiting if id(job) not in taken]
        return group

    def _compute(self, group: list[_Pass]) -> None:
        """One forward pass over every batch of ``group``; each gets its rows, or the pass's error."""
        try:
            outs = self._pass(group)
        except Exception as exc:  # every batch of the pass fails, as one batch would
            for job in group:
                job.error = exc
        else:
            for job, out in zip(group, outs, strict=True):
                job.out = out
        finally:
            with self._cond:
                for job in group:
                    job.done = True

    def _pass(self, group: list[_Pass]) -> list[NDArray[np.float32]]:
        first = group[0]
        ids, mask = self.encoder.pad([row for job in group for row in job.batch])  # (rows, longest) each
        extra: dict[str, object] = {}
        if len({job.adapter for job in group}) > 1:  # each row through its own adapter's weights
            extra["adapter_names"] = [job.adapter for job in group for _ in job.batch]
        elif self.shareable and self.active != first.adapter:
            self.model.set_adapter(first.adapter)  # type: ignore[operator]
            self.active = first.adapter
        raw = raw_outputs(self.model, ids, mask, first.descriptor.task, **extra)
        outs, start = [], 0
        for job in group:  # each adapter's own pooling and normalisation over its rows
            end = start + len(job.batch)
            outs.append(answers(raw[start:end], mask[start:end], job.descriptor))
            start = end
        return outs


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
        self._info = RuntimeInfo.of(descriptor, "pytorch+peft", dims, base=key.base)

    @property
    def info(self) -> RuntimeInfo:
        return self._info

    def encode(self, texts: Sequence[str]) -> list[list[int]]:
        return self.shared.encoder.encode(texts)

    def forward(self, batch: Sequence[Sequence[int]]) -> NDArray[np.float32]:
        return self.shared.forward(self.adapter, self._descriptor, batch)

    def close(self) -> None:
        self.pool.release(self.key, self.adapter)


class AdapterPool:
    """The bases in memory and the adapters on each; one pool per server. ``limits``: the server's
    batch limits, which a pass of several adapters' batches keeps to (None: no limit)."""

    def __init__(self, limits: Limits | None = None) -> None:
        self.limits = limits
        self._bases: dict[BaseKey, SharedBase] = {}
        self._lock = threading.Lock()  # guards _bases; loading holds it so two loads never race

    @property
    def bases(self) -> int:
        return len(self._bases)

    def load(self, hub: HubApi, version: VersionInfo, folder: Path, threads: int | None) -> AdapterRuntime:
        from fmstack.train.adapter_descriptor import read_adapter

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

                with shared.exclusive():
                    shared.model.load_adapter(str(folder), adapter_name=name)  # type: ignore[operator]
                    try:
                        check_loaded(shared.model, folder, name)  # type: ignore[arg-type]
                    except InvalidInput:
                        shared.model.delete_adapter(name)  # type: ignore[operator]  # the others keep serving
                        raise
            shared.adapters.add(name)
            if shared.shareable and _is_lora(shared.model, name):
                shared.mixable.add(name)
        dims = int(getattr(getattr(shared.model, "config", None), "hidden_size", 0) or 0)
        return AdapterRuntime(self, key, shared, name, descriptor, dims)

    def _load_base(
        self, hub: HubApi, ref: str, base: str, name: str, shareable: bool, threads: int | None
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
        shared = SharedBase(model.eval(), TextEncoder.from_folder(hub.checkout(base)), shareable, self.limits)
        shared.active = name if shareable else None
        return shared

    def release(self, key: BaseKey, name: str) -> None:
        """Unload one adapter; the base goes with its last adapter."""
        with self._lock:
            shared = self._bases.get(key)
            if shared is None:
                return
            with shared.exclusive():
                shared.adapters.discard(name)
                shared.mixable.discard(name)
                if not shared.adapters:
                    del self._bases[key]
                elif shared.shareable:
                    shared.active = next(iter(shared.adapters))  # PEFT cannot delete the active adapter
                    shared.model.set_adapter(shared.active)  # type: ignore[operator]
                    shared.model.delete_adapter(name)  # type: ignore[operator]


def _is_lora(model: torch.nn.Module, name: str) -> bool:
    """Whether PEFT mixes ``name`` with other adapters in one pass: LoRA does (``adapter_names=``);
    others (IA3) would silently run every row through the active adapter."""
    from peft import PeftType

    config = getattr(model, "peft_config", {}).get(name)
    return config is not None and config.peft_type == PeftType.LORA
