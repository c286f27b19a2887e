"""From a hub ref to a running runtime: resolve, check out, pick the runtime by ``fmstack.json``."""

from __future__ import annotations

from fmstack.compress.artifact import read_descriptor
from fmstack.errors import Unsupported
from fmstack.hub import Hub, VersionInfo
from fmstack.serve.runtimes.base import Runtime
from fmstack.serve.runtimes.registry import RUNTIMES


def load_runtime(hub: Hub, ref: str, threads: int | None) -> tuple[VersionInfo, Runtime]:
    """Load the version ``ref`` points at now. Blocking (reads files, builds sessions): run it off the loop."""
    version = hub.resolve(ref)
    if version.kind == "dataset":
        raise Unsupported(f"{ref} is a dataset ({version.ref}); serve a model or an adapter version")
    folder = hub.checkout(version.ref)
    descriptor = read_descriptor(folder)
    fmt = descriptor.format if descriptor is not None else "pytorch"
    loader = RUNTIMES.get(fmt)
    if loader is None:
        raise Unsupported(f"{version.ref}: no runtime for format {fmt!r}; known: {sorted(RUNTIMES)}")
    return version, loader(folder, descriptor, threads)
