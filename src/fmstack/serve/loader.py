"""From a hub ref to a running runtime: resolve, check out, pick the runtime.

Model versions go to the runtime their ``fmstack.json`` names (PyTorch when there is none); adapter
versions go to the server's ``AdapterPool``, which keeps one base in memory for all its adapters. A
version with a ``search/`` folder (``serve.vector_index``) comes with its vector index loaded.
"""

from __future__ import annotations

from fmstack.errors import Unsupported
from fmstack.hub import HubApi, VersionInfo
from fmstack.servable import read_descriptor
from fmstack.serve.batching import Limits
from fmstack.serve.runtimes.adapters import AdapterPool
from fmstack.serve.runtimes.base import Runtime
from fmstack.serve.runtimes.registry import RUNTIMES
from fmstack.serve.vector_index import with_index


class HubLoader:
    """``loader(ref) -> (version, runtime)`` for one server: blocking (reads files, builds sessions),
    so the server calls it off the event loop. ``limits``: the server's batch limits, which a forward
    pass mixing several adapters' batches keeps to."""

    def __init__(self, hub: HubApi, threads: int | None, limits: Limits | None = None) -> None:
        self.hub = hub
        self.threads = threads
        self.adapters = AdapterPool(limits)

    def __call__(self, ref: str) -> tuple[VersionInfo, Runtime]:
        version = self.hub.resolve(ref)
        if version.kind == "dataset":
            raise Unsupported(f"{ref} is a dataset ({version.ref}); serve a model or an adapter version")
        folder = self.hub.checkout(version.ref)
        if version.kind == "adapter":
            return version, self.adapters.load(self.hub, version, folder, self.threads)
        descriptor = read_descriptor(folder)
        fmt = descriptor.format if descriptor is not None else "pytorch"
        loader = RUNTIMES.get(fmt)
        if loader is None:
            raise Unsupported(f"{version.ref}: no runtime for format {fmt!r}; known: {sorted(RUNTIMES)}")
        return version, with_index(folder, loader(folder, descriptor, self.threads))


def load_runtime(hub: HubApi, ref: str, threads: int | None) -> tuple[VersionInfo, Runtime]:
    """Load the version ``ref`` points at now, on its own (no adapter sharing across calls)."""
    return HubLoader(hub, threads)(ref)
