"""``map_labels``: rename or merge labels; unmapped labels are kept or their rows dropped."""

from __future__ import annotations

from typing import Literal

import pyarrow as pa

from fmstack.data.ops.base import Context, OpConfig, Stats


class MapLabelsConfig(OpConfig):
    op: Literal["map_labels"] = "map_labels"
    mapping: dict[str, str]
    unmapped: Literal["keep", "drop"] = "keep"

    def labels_after(self, labels: tuple[str, ...]) -> tuple[str, ...]:
        out: dict[str, None] = {}
        for label in labels:
            if label in self.mapping:
                out[self.mapping[label]] = None
            elif self.unmapped == "keep":
                out[label] = None
        for target in self.mapping.values():  # targets that were not labels before still exist now
            out.setdefault(target, None)
        return tuple(out)

    def build(self) -> MapLabels:
        return MapLabels(self)


class MapLabels:
    def __init__(self, config: MapLabelsConfig) -> None:
        self.config = config

    def apply(self, table: pa.Table, ctx: Context) -> tuple[pa.Table, Stats]:
        if "label" not in table.column_names:
            return table, {"rows_in": table.num_rows, "rows_out": table.num_rows}
        mapping, keep_unmapped = self.config.mapping, self.config.unmapped == "keep"
        labels = table.column("label").to_pylist()
        new = [mapping.get(x, x if keep_unmapped else None) for x in labels]
        changed = sum(1 for a, b in zip(labels, new, strict=True) if b is not None and a != b)
        table = table.set_column(table.column_names.index("label"), "label", pa.array(new, pa.string()))
        out = table.filter(pa.array([x is not None for x in new]))
        return out, {"rows_in": len(labels), "rows_out": out.num_rows, "labels_changed": changed}
