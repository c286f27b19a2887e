"""Serving backends by format: ``fmstack.json``'s ``format`` (``pytorch`` when there is none).

Adding a runtime = one module with a ``load(folder, descriptor, threads)`` + one line here.
"""

from __future__ import annotations

from fmstack.serve.runtimes import onnx, pytorch
from fmstack.serve.runtimes.base import RuntimeLoader

RUNTIMES: dict[str, RuntimeLoader] = {
    "onnx": onnx.load,
    "pytorch": pytorch.load,
}
