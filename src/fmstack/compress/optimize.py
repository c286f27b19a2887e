"""ONNX Runtime graph optimisation: fuse attention, SkipLayerNorm and GELU for BERT-like encoders.

ONNX Runtime's transformer optimizer (``onnxruntime.transformers.optimizer``) does the pattern
matching; this module only picks its arguments and reports what got fused, so a report shows
whether attention really runs as one fused kernel.
"""

from __future__ import annotations

import contextlib
import io
import logging
from pathlib import Path

# model_type in config.json -> the optimizer's model family
FAMILIES = {"bert": "bert", "roberta": "bert", "xlm-roberta": "bert", "electra": "bert", "camembert": "bert"}


def optimize_graph(
    src: Path, dest: Path, model_type: str, num_heads: int, hidden_size: int
) -> dict[str, int]:
    """Write the fused graph of ``src`` to ``dest``; return the fused operator counts (empty: nothing fused).

    ``num_heads`` and ``hidden_size`` are those of the (possibly head-pruned) attention: the fused
    ``Attention`` op needs them and cannot read them from a graph with dynamic shapes.
    """
    family = FAMILIES.get(model_type)
    if family is None:
        dest.write_bytes(src.read_bytes())
        return {}
    from onnxruntime.transformers import optimizer

    # The optimizer logs every pattern it fails to match at WARNING; nothing there is actionable here.
    logging.getLogger("onnxruntime.transformers").setLevel(logging.ERROR)
    for name in ("fusion_skiplayernorm", "fusion_attention", "onnx_model", "fusion_utils"):
        logging.getLogger(name).setLevel(logging.ERROR)
    # Its symbolic shape inference prints failures to stdout, which would corrupt ``--json`` output.
    with contextlib.redirect_stdout(io.StringIO()):
        model = optimizer.optimize_model(
            str(src), model_type=family, num_heads=num_heads, hidden_size=hidden_size, opt_level=0
        )
    # Shapes recorded by the exporter go stale when nodes are fused; drop them so later passes
    # (quantisation runs ONNX shape inference) infer fresh ones instead of failing on a mismatch.
    del model.model.graph.value_info[:]
    model.save_model_to_file(str(dest))
    stats = model.get_fused_operator_statistics()
    return {name: int(count) for name, count in stats.items() if count}
