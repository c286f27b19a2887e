"""Processing ops: one module per op, each a typed config (``XConfig``) that builds a runtime op.

``registry.OPS`` lists them; ``base`` defines the three shapes an op can take (row-wise, global,
final). The pipeline (``fmstack.data.pipeline``) decides where each runs."""
