"""Every processing op, by the name a spec uses (``op: normalize``). Adding an op = one module + one
line here; ``tests/data/ops/test_registry.py`` runs its contract over every entry."""

from __future__ import annotations

from fmstack.data.ops.augment import AugmentConfig
from fmstack.data.ops.base import OpConfig
from fmstack.data.ops.dedup_exact import DedupExactConfig
from fmstack.data.ops.dedup_near import DedupNearConfig
from fmstack.data.ops.filter import FilterConfig
from fmstack.data.ops.map_labels import MapLabelsConfig
from fmstack.data.ops.normalize import NormalizeConfig
from fmstack.data.ops.pack import PackConfig
from fmstack.data.ops.redact_pii import RedactPiiConfig
from fmstack.data.ops.sample import SampleConfig
from fmstack.data.ops.split import SplitConfig
from fmstack.data.ops.tokenize import TokenizeConfig

OPS: dict[str, type[OpConfig]] = {
    "normalize": NormalizeConfig,
    "filter": FilterConfig,
    "dedup_exact": DedupExactConfig,
    "dedup_near": DedupNearConfig,
    "redact_pii": RedactPiiConfig,
    "map_labels": MapLabelsConfig,
    "split": SplitConfig,
    "augment": AugmentConfig,
    "sample": SampleConfig,
    "tokenize": TokenizeConfig,
    "pack": PackConfig,
}
