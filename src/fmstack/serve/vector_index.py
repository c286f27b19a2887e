"""The vector index of a search model version: its file format, how it is built, and top-k search with
metadata filters.

A search version is an embedding model version (its weights, tokenizer and ``fmstack.json``) with a
``search/`` folder beside them: ``index.faiss`` (a faiss index over the items' vectors, computed by
that very model, so queries and items live in one space), ``items.parquet`` (one row per vector: id,
text and metadata columns) and ``index.json`` (``IndexDescriptor``). Serving the version loads both:
``/v1/search`` embeds the query with the model and looks it up here. faiss does the nearest-neighbour
work (exact inner product, or HNSW for large catalogs) and its ID selectors do the filtering inside
the search, so a filter never leaves fewer than k hits while k matching items exist.

Knows nothing of HTTP or of how the vectors were trained.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from numpy.typing import NDArray
from pydantic import BaseModel, ConfigDict

from fmstack.errors import InvalidInput, Unsupported, clip
from fmstack.servable import read_json_model, write_json_model
from fmstack.serve.runtimes.base import Runtime, RuntimeInfo

if TYPE_CHECKING:
    import faiss

SEARCH_DIR = "search"
INDEX_FILE = "index.faiss"
ITEMS_FILE = "items.parquet"
DESCRIPTOR_FILE = "index.json"
IndexKind = Literal["flat", "hnsw"]
Scalar = str | int | float | bool
Filters = Mapping[str, Scalar | Sequence[Scalar]]

# HNSW: links per node (faiss' usual 32) and the breadth of the search (at least top_k); exact ("flat")
# search costs one inner product per item, fine up to ~10^5 items on a CPU.
HNSW_LINKS = 32
HNSW_EF_SEARCH = 64


class IndexDescriptor(BaseModel):
    model_config = ConfigDict(extra="forbid")
    schema_version: Literal[1] = 1
    kind: IndexKind
    count: int
    dimensions: int
    id_column: str = "id"
    text_column: str = "text"
    metadata: list[str] = []  # the items' other columns: what filters may name


@dataclass(frozen=True)
class Hit:
    id: str
    text: str
    score: float  # inner product; cosine similarity for normalised vectors
    metadata: dict[str, Any]


def write_index(
    folder: Path, vectors: NDArray[np.float32], items: pa.Table, kind: IndexKind
) -> IndexDescriptor:
    """Write ``search/`` into ``folder``: the index over ``vectors`` (items, dimensions), row i of which
    is ``items`` row i (columns ``id``, ``text`` and any metadata)."""
    import faiss

    if vectors.ndim != 2 or vectors.shape[0] != items.num_rows or items.num_rows == 0:
        raise InvalidInput(
            f"{vectors.shape[0]} vectors for {items.num_rows} items: need one per item, at least one"
        )
    for needed in ("id", "text"):
        if needed not in items.column_names:
            raise InvalidInput(f"the items table has no {needed!r} column (columns: {items.column_names})")
    dims = int(vectors.shape[1])
    index = (
        faiss.IndexFlatIP(dims)
        if kind == "flat"
        else faiss.IndexHNSWFlat(dims, HNSW_LINKS, faiss.METRIC_INNER_PRODUCT)
    )
    index.add(np.ascontiguousarray(vectors, dtype=np.float32))
    out = folder / SEARCH_DIR
    out.mkdir(parents=True, exist_ok=True)
    faiss.write_index(index, str(out / INDEX_FILE))
    pq.write_table(items, out / ITEMS_FILE)
    descriptor = IndexDescriptor(
        kind=kind,
        count=items.num_rows,
        dimensions=dims,
        metadata=[c for c in items.column_names if c not in ("id", "text")],
    )
    write_json_model(out / DESCRIPTOR_FILE, descriptor)
    return descriptor


class VectorIndex:
    """A loaded ``search/`` folder: ``search(vectors, k, filters)``. Searches may run from several
    threads at once (faiss' search is read-only)."""

    def __init__(self, folder: Path) -> None:
        import faiss

        descriptor = read_json_model(folder / DESCRIPTOR_FILE, IndexDescriptor)
        if descriptor is None:
            raise InvalidInput(f"{folder}: no {DESCRIPTOR_FILE}; not a search index")
        self.descriptor = descriptor
        self._index = faiss.read_index(str(folder / INDEX_FILE))
        self.items = pq.read_table(folder / ITEMS_FILE)
        self._ids = [str(v) for v in self.items.column("id").to_pylist()]
        self._texts = [str(v) for v in self.items.column("text").to_pylist()]
        if self._index.ntotal != self.items.num_rows:
            raise InvalidInput(f"{folder}: {self._index.ntotal} vectors for {self.items.num_rows} items")

    @property
    def dimensions(self) -> int:
        return int(self._index.d)

    def search(self, vectors: NDArray[np.float32], k: int, filters: Filters | None = None) -> list[list[Hit]]:
        """The top ``k`` items of each query vector (queries, dimensions), best first, among the items
        whose metadata match every filter (a column -> a value or any of a list of values)."""
        import faiss as faiss_module

        faiss: Any = faiss_module  # its stubs lack the search parameter classes' SWIG constructors
        selector = self._selector(filters) if filters else None
        params: Any = None
        if self.descriptor.kind == "hnsw":
            params = faiss.SearchParametersHNSW(efSearch=max(HNSW_EF_SEARCH, k), sel=selector)
        elif selector is not None:
            params = faiss.SearchParameters(sel=selector)
        k = min(k, self.items.num_rows)
        scores, rows = self._index.search(np.ascontiguousarray(vectors, dtype=np.float32), k, params=params)
        return [self._hits(score_row, id_row) for score_row, id_row in zip(scores, rows, strict=True)]

    def _hits(self, scores: NDArray[np.float32], rows: NDArray[np.int64]) -> list[Hit]:
        found = [int(r) for r in rows if r >= 0]  # -1: fewer than k items matched the filters
        metadata = self.items.select(self.descriptor.metadata).take(found).to_pylist() if found else []
        return [
            Hit(self._ids[r], self._texts[r], float(s), meta)
            for r, s, meta in zip(found, scores, metadata, strict=False)
        ]

    def _selector(self, filters: Filters) -> faiss.IDSelector:
        import faiss

        mask = np.ones(self.items.num_rows, dtype=bool)
        for column, wanted in filters.items():
            if column not in self.descriptor.metadata:
                raise InvalidInput(
                    f"filter {clip(column)!r}: the index has no such metadata column; it has "
                    f"{self.descriptor.metadata or 'none'}"
                )
            values = list(wanted) if isinstance(wanted, list | tuple) else [wanted]
            data = self.items.column(column)
            try:
                value_set = pa.array(values).cast(data.type)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):
                raise InvalidInput(
                    f"filter {clip(column)!r}: {clip(values)} cannot be compared with the column's {data.type} values"
                ) from None
            mask &= pc.is_in(data, value_set=value_set).to_numpy(zero_copy_only=False)
        return faiss.IDSelectorBatch(np.flatnonzero(mask).astype(np.int64))


class IndexedRuntime:
    """An embedding runtime together with its version's vector index: the server keeps them as one
    loaded version, so an alias swap moves both at once."""

    def __init__(self, runtime: Runtime, index: VectorIndex) -> None:
        self._runtime = runtime
        self.index = index

    @property
    def info(self) -> RuntimeInfo:
        return self._runtime.info

    def encode(self, texts: Sequence[str]) -> list[list[int]]:
        return self._runtime.encode(texts)

    def forward(self, batch: Sequence[Sequence[int]]) -> NDArray[np.float32]:
        return self._runtime.forward(batch)

    def close(self) -> None:
        self._runtime.close()


def with_index(folder: Path, runtime: Runtime) -> Runtime:
    """``runtime`` with the index of the version checked out at ``folder``, when it has one."""
    if not (folder / SEARCH_DIR).is_dir():
        return runtime
    if runtime.info.task != "embedding":
        raise Unsupported(f"{folder.name}: a search index needs an embedding model, not {runtime.info.task}")
    index = VectorIndex(folder / SEARCH_DIR)
    if index.dimensions != runtime.info.dimensions:
        raise InvalidInput(
            f"the search index holds {index.dimensions}-dimensional vectors; the model makes "
            f"{runtime.info.dimensions}: rebuild the index with this model"
        )
    return IndexedRuntime(runtime, index)
