"""The models a server serves: each hub ref given at start, its loaded version, and hot swaps.

A ref that names an alias (``acme/intent@production``) or no version (``acme/intent``, the latest)
follows the hub: ``refresh`` loads the version it points at now, switches new requests to it, then
lets the old worker finish what it had queued and unloads it. Requests already queued finish on the
old version; none fails because of the swap.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass

from fmstack.errors import FmstackError, NotFound
from fmstack.hub import HubApi, VersionInfo, parse_ref
from fmstack.serve.batching import Limits
from fmstack.serve.errors import ModelNotReady, clip, hide_paths
from fmstack.serve.metrics import ServeMetrics
from fmstack.serve.runtimes.base import Runtime
from fmstack.serve.settings import ServeSettings
from fmstack.serve.worker import ModelWorker

log = logging.getLogger("fmstack.serve")

LoadFn = Callable[[str], tuple[VersionInfo, Runtime]]


@dataclass(eq=False)
class Loaded:
    """One loaded version: the runtime and the worker that batches for it."""

    version: VersionInfo
    runtime: Runtime
    worker: ModelWorker
    _tail: int | None = None

    def special_tail(self) -> int:
        """How many special tokens the tokenizer appends to a text (BERT's [SEP]: 1; none: 0), found by
        comparing the ids of "" and "x": a cut text keeps them at its end."""
        if self._tail is None:
            empty, one = self.runtime.encode(["", "x"])
            head = next((i for i, (a, b) in enumerate(zip(empty, one, strict=False)) if a != b), len(empty))
            self._tail = len(empty) - head
        return self._tail


class ServedModel:
    def __init__(self, name: str) -> None:
        self.name = name  # the ref exactly as given: what clients put in "model"
        ref = parse_ref(name)
        self.repo = ref.repo
        self.follows = ref.version is None  # an alias or "latest": may move to another version
        self.current: Loaded | None = None
        # The version the ref points at that failed to load: (its digest, why). Not tried again until
        # the ref moves; the loaded version keeps serving meanwhile.
        self.failed: tuple[str, str] | None = None

    def loaded(self) -> Loaded:
        if self.current is None:
            raise ModelNotReady(f"model {self.name!r} is not loaded yet; retry when /readyz says ready")
        return self.current


class ModelSet:
    def __init__(self, settings: ServeSettings, load: LoadFn, metrics: ServeMetrics) -> None:
        self.settings = settings
        self._load = load
        self._metrics = metrics
        self.models = {name: ServedModel(name) for name in settings.models}
        self._limits = batch_limits(settings)

    @property
    def ready(self) -> bool:
        return all(m.current is not None and m.current.worker.alive for m in self.models.values())

    @property
    def failure(self) -> str | None:
        """Why a loaded model cannot compute any more (its batch worker died), if one cannot."""
        dead = [(m.name, m.current.worker.failure) for m in self.models.values() if m.current]
        return next((f"model {name!r}: {why}" for name, why in dead if why is not None), None)

    def get(self, name: str) -> ServedModel:
        """A served model by the ref it was started with, or by ``ns/name`` when only one ref of that
        repo is served."""
        found = self.models.get(name)
        if found is not None:
            return found
        same_repo = [m for m in self.models.values() if m.repo == name]
        if len(same_repo) == 1:
            return same_repo[0]
        raise NotFound(f"model {clip(name)!r} is not served here; served models: {sorted(self.models)}")

    async def load_all(self) -> None:
        for model in self.models.values():
            model.current = await self._start(model.name)

    async def _start(self, name: str) -> Loaded:
        version, runtime = await asyncio.to_thread(self._load, name)
        worker = ModelWorker(
            name=name,
            runtime=runtime,
            limits=self._limits,
            max_queue=self.settings.max_queue,
            observer=self._metrics.observer(name),
        )
        worker.start()
        self._metrics.version.labels(name).set(version.number)
        log.info("serving %s as %s (%s, %s)", name, version.ref, runtime.info.task, runtime.info.platform)
        return Loaded(version, runtime, worker)

    async def refresh(self, resolve: Callable[[str], VersionInfo]) -> list[tuple[str, str, str]]:
        """Swap every following model whose ref now points elsewhere; returns (name, old, new) refs.

        A version that fails to load is counted (``fmstack_serve_load_failures_total``), named in
        ``/readyz`` and logged once; the loaded version keeps serving until the ref moves again."""
        swaps: list[tuple[str, str, str]] = []
        for model in self.models.values():
            old = model.current
            if not model.follows or old is None:
                continue
            target = await asyncio.to_thread(resolve, model.name)
            if target.digest == old.version.digest:
                model.failed = None
                continue
            if model.failed is not None and model.failed[0] == target.digest:
                continue
            try:
                new = await self._start(model.name)
            except Exception as exc:  # a broken version must not stop the one that works
                self._swap_failed(model, target, exc)
                continue
            model.current, model.failed = new, None  # new requests go to the new version now
            await asyncio.to_thread(_unload, old)  # queued requests finish on the old one first
            swaps.append((model.name, old.version.ref, new.version.ref))
            log.info("swapped %s: %s -> %s", model.name, old.version.ref, new.version.ref)
        return swaps

    def _swap_failed(self, model: ServedModel, target: VersionInfo, exc: Exception) -> None:
        why = str(exc) if isinstance(exc, FmstackError) else f"{type(exc).__name__}: {exc}"
        model.failed = (target.digest, f"{target.ref} failed to load: {hide_paths(why)}")
        self._metrics.load_failures.labels(model.name).inc()
        serving = model.current.version.ref if model.current else "nothing"
        log.error(
            "cannot swap %s to %s, still serving %s: %s",
            model.name,
            target.ref,
            serving,
            why,
            exc_info=not isinstance(exc, FmstackError),  # a traceback only for what is not a user error
        )

    async def close(self) -> None:
        for model in self.models.values():
            if model.current is not None:
                old, model.current = model.current, None
                await asyncio.to_thread(_unload, old)


def _unload(loaded: Loaded) -> None:
    loaded.worker.close()
    loaded.runtime.close()


def batch_limits(settings: ServeSettings) -> Limits:
    """The batching rules of ``settings``' options."""
    return Limits(
        max_tokens=settings.max_batch_tokens,
        max_size=settings.max_batch_size,
        max_wait_s=settings.max_wait_ms / 1000,
        min_fill=settings.min_batch_fill,
    )


def hub_loader(hub: HubApi, threads: int | None, limits: Limits | None = None) -> LoadFn:
    from fmstack.serve.loader import HubLoader

    return HubLoader(hub, threads, limits)
