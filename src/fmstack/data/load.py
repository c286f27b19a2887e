"""Reading a dataset version back: as a Hugging Face ``datasets.Dataset`` or an Arrow table."""

from __future__ import annotations

from typing import Any, Literal

import pyarrow as pa

from fmstack.data.format import read_manifest, read_split
from fmstack.errors import InvalidInput
from fmstack.hub import Hub


def load(
    ref: str, split: str = "train", format: Literal["datasets", "arrow"] = "datasets", hub: Hub | None = None
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
    read_manifest(folder)
    table: pa.Table = read_split(folder, split)
    if format == "arrow":
        return table
    import datasets  # imported here: loading it costs a second and the Arrow path does not need it

    return datasets.Dataset(table)
