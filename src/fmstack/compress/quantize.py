"""int8 quantisation of an ONNX graph with ONNX Runtime's quantizer.

Dynamic (the default): int8 weights, activation scales computed per batch at run time; no data
needed. Per-channel weight scales by default: one scale per output channel keeps MiniLM's accuracy,
where ONNX Runtime's default of one scale per tensor loses points. Static: activation scales are
fixed from calibration batches (``QDQ`` format, MinMax), which removes the run-time scale
computation but depends on how representative the calibration texts are.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import numpy as np

Batch = dict[str, np.ndarray]
# ONNX shape inference cannot type the outputs of fused contrib ops (com.microsoft Attention,
# SkipLayerNormalization); every activation in these graphs is float32, so say so.
FLOAT = 1  # onnx.TensorProto.FLOAT


@contextmanager
def _quiet() -> Iterator[None]:
    # "Please consider to run pre-processing before quantization" is logged on the root logger on every
    # call; the graph was already optimised and shape-inferred by ``optimize_graph``. Raised for the
    # call only: the rest of the process keeps its logging (it used to stay at ERROR for good).
    root = logging.getLogger()
    level = root.level
    root.setLevel(max(level, logging.ERROR))
    try:
        yield
    finally:
        root.setLevel(level)


def quantize_dynamic_int8(src: Path, dest: Path, per_channel: bool, calibration: Sequence[Batch]) -> None:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    del calibration  # dynamic quantisation measures activations at run time
    with _quiet():
        quantize_dynamic(
            str(src),
            str(dest),
            per_channel=per_channel,
            weight_type=QuantType.QInt8,
            extra_options={"DefaultTensorType": FLOAT},
        )


class _Reader:
    """ONNX Runtime's CalibrationDataReader protocol over prepared batches."""

    def __init__(self, batches: Sequence[Batch]) -> None:
        self._batches: Iterator[Batch] = iter(batches)

    def get_next(self) -> Batch | None:
        return next(self._batches, None)

    def rewind(self) -> None:  # pragma: no cover - only used by some calibration methods
        raise NotImplementedError


def quantize_static_int8(src: Path, dest: Path, per_channel: bool, calibration: Sequence[Batch]) -> None:
    import onnxruntime as ort

    # The calibration session warns "Removing initializer ..." for each weight the graph no longer
    # reads; only errors from ONNX Runtime's own logger while it runs (2, warnings, is its default).
    ort.set_default_logger_severity(3)
    try:
        with _quiet():
            _quantize_static(src, dest, per_channel, calibration)
    finally:
        ort.set_default_logger_severity(2)


def _quantize_static(src: Path, dest: Path, per_channel: bool, calibration: Sequence[Batch]) -> None:
    from onnxruntime.quantization import QuantFormat, QuantType, quantize_static

    quantize_static(
        str(src),
        str(dest),
        _Reader(calibration),
        quant_format=QuantFormat.QDQ,
        per_channel=per_channel,
        activation_type=QuantType.QUInt8,
        weight_type=QuantType.QInt8,
        # Only MatMul weights: Attention, LayerNorm and the small Gemm heads (pooler, classifier) stay float;
        # quantising their inputs costs accuracy, and a Gemm bias needs an input scale calibration may not give.
        op_types_to_quantize=["MatMul"],
        extra_options={"ActivationSymmetric": False, "WeightSymmetric": True, "DefaultTensorType": FLOAT},
    )
