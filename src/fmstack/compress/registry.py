"""The extensible parts of compression, one plain dict each. Adding one = a function + one line here.

Every entry is checked by ``tests/compress/test_registry.py`` against the same contract.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from torch import nn

from fmstack.compress.prune import prune_ffn, prune_heads, prune_magnitude
from fmstack.compress.quantize import quantize_dynamic_int8, quantize_static_int8

Quantizer = Callable[[Path, Path, bool, Sequence[dict[str, np.ndarray]]], None]
Pruner = Callable[[nn.Module, float], dict[str, Any]]

# (quantize, calibration) -> function(src.onnx, dest.onnx, per_channel, calibration batches)
QUANTIZERS: dict[str, Quantizer] = {
    "int8-dynamic": quantize_dynamic_int8,
    "int8-static": quantize_static_int8,
}

# --structured value (or "magnitude") -> function(model, fraction) -> facts for the report
PRUNERS: dict[str, Pruner] = {
    "magnitude": prune_magnitude,
    "heads": prune_heads,
    "ffn": prune_ffn,
}
