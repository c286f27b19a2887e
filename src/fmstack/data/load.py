"""Reading a dataset version back: as a Hugging Face ``datasets.Dataset`` or an Arrow table.

The ``datasets`` form has the same features as ``datasets.load_dataset("parquet")`` on the shards:
``label`` is a ``ClassLabel`` with the manifest's names (docs/interop.md). The Arrow form keeps the
names as strings, as every step of fmstack reads them."""

from __future__ import annotations

from typing import Any, Literal

import pyarrow as pa

from fmstack.data.format import read_manifest, read_split
from fmstack.errors import InvalidInput
from fmstack.hub import Hub, HubApi


def load(
    ref: str,
    split: str = "train",
    format: Literal["datasets", "arrow"] = "datasets",
    hub: HubApi | None = None,
) -> Any:
    """One split of a dataset version. ``format="arrow"`` returns a ``pyarrow.Table``."""
    if format not in ("datasets", "arrow"):
        raise InvalidInput(f"bad format {format!r}: use 'datasets' or 'arrow'")
    own = hub is None
    hub = hub or Hub.open()
    try:
        version = hub.resolve(ref)
        if version.kind != "dataset":
            raise InvalidInput(f"{version.ref} is a {version.kind}, not a dataset")
        folder = hub.checkout(ref)
    finally:
        if own:
            hub.close()
    manifest = read_manifest(folder)
    table: pa.Table = read_split(folder, split)
    if format == "arrow":
        return table
    import datasets  # imported here: loading it costs a second and the Arrow path does not need it

    dataset = datasets.Dataset(table)
    if not manifest.labels or "label" not in table.column_names or split == "rejected":
        return dataset
    label: Any = datasets.ClassLabel(names=manifest.labels)
    features = dataset.features.copy()
    features["label"] = datasets.List(label) if manifest.multi_label else label
    try:
        return dataset.cast(features)
    except ValueError:  # a label outside the manifest (a version written before validation): strings
        return dataset
