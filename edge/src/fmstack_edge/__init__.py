"""fmstack-edge: run fmstack's ONNX bundles on devices without torch, and keep them updated safely.

``Model(path).predict(texts)`` / ``.embed(texts)``; ``fmstack-edge serve`` (HTTP) and
``fmstack-edge agent`` (signed over-the-air updates with A/B slots) are in ``cli.py``.
"""

from fmstack_edge.errors import BadBundle, BadInput, EdgeError, UpdateRejected
from fmstack_edge.model import Model, Prediction

__version__ = "0.1.0"
__all__ = ["BadBundle", "BadInput", "EdgeError", "Model", "Prediction", "UpdateRejected", "__version__"]
