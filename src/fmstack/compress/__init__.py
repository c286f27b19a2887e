"""Compression: turn a model version into a smaller, faster ONNX version, measured and gated.

    from fmstack.compress import CompressSpec, compress
    result = compress(hub, "acme/intents", CompressSpec(quantize="int8", eval_data="acme/intents-data"))
    result.version        # the new model version (None when the accuracy gate refused it)
    result.report         # sizes, latency at batch 1 and 32, quality against the parent

Steps: merge adapters (through ``fmstack.train``), prune (magnitude, heads, FFN neurons), export
(``torch.onnx.export(dynamo=True)``), fuse (ONNX Runtime's transformer optimizer), quantise (int8,
dynamic or static). The output folder carries ``fmstack.json`` (``fmstack.servable.ServableModel``) for servers.
Layering: uses ``fmstack.hub``, ``fmstack.data.format`` and ``fmstack.train``; knows nothing of the CLI.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fmstack.compress.pipeline import CompressResult, compress
    from fmstack.compress.report import CompressReport, Measure
    from fmstack.compress.spec import CompressSpec, parse_spec

# Imported on first use: ``fmstack.servable`` is read by torch-free runtimes (edge, ONNX
# serving), and importing this package must not pull torch into them.
_LAZY = {
    "CompressResult": "pipeline",
    "compress": "pipeline",
    "CompressReport": "report",
    "Measure": "report",
    "CompressSpec": "spec",
    "parse_spec": "spec",
}


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'fmstack.compress' has no attribute {name!r}")
    return getattr(importlib.import_module(f"fmstack.compress.{_LAZY[name]}"), name)


__all__ = ["CompressReport", "CompressResult", "CompressSpec", "Measure", "compress", "parse_spec"]
