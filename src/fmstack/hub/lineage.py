"""Lineage queries: a version is produced by a run, which consumed input versions. Upstream walks from
a version to what it was made from; downstream to what was made from it."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from fmstack.hub.entities import Kind, Lineage, LineageNode
from fmstack.hub.resolve import ref_of
from fmstack.hub.schema import RunInputRow, RunRow, VersionRow

_MAX_DEPTH = 64  # lineage is a DAG; the bound only guards against a corrupted cycle


def _inputs(session: Session, row: VersionRow) -> list[VersionRow]:
    if row.run_id is None:
        return []
    query = (
        select(VersionRow).join(RunInputRow).where(RunInputRow.run_id == row.run_id).order_by(VersionRow.id)
    )
    return list(session.scalars(query))


def _outputs(session: Session, row: VersionRow) -> list[VersionRow]:
    runs = select(RunInputRow.run_id).where(RunInputRow.version_id == row.id)
    query = select(VersionRow).where(VersionRow.run_id.in_(runs)).order_by(VersionRow.id)
    return list(session.scalars(query))


def input_refs(session: Session, row: VersionRow) -> list[str]:
    return [ref_of(v) for v in _inputs(session, row)]


def output_refs(session: Session, row: VersionRow) -> list[str]:
    return [ref_of(v) for v in _outputs(session, row)]


def _node(session: Session, row: VersionRow, children: list[LineageNode]) -> LineageNode:
    run_kind = session.get_one(RunRow, row.run_id).kind if row.run_id is not None else None
    kind: Kind = row.repo.kind  # type: ignore[assignment]
    return LineageNode(ref=ref_of(row), kind=kind, run_id=row.run_id, run_kind=run_kind, parents=children)


def _upstream(session: Session, row: VersionRow, depth: int) -> LineageNode:
    parents = [] if depth >= _MAX_DEPTH else [_upstream(session, p, depth + 1) for p in _inputs(session, row)]
    return _node(session, row, parents)


def _downstream(session: Session, row: VersionRow, depth: int) -> list[LineageNode]:
    if depth >= _MAX_DEPTH:
        return []
    # For downstream nodes, ``parents`` holds the versions derived from them (the tree grows outward).
    return [_node(session, child, _downstream(session, child, depth + 1)) for child in _outputs(session, row)]


def build(session: Session, row: VersionRow) -> Lineage:
    return Lineage(
        ref=ref_of(row), upstream=_upstream(session, row, 0), downstream=_downstream(session, row, 0)
    )


def graph(lineage: Lineage) -> dict[str, object]:
    """Nodes and edges (``from`` was consumed to produce ``to``) for JSON output."""
    nodes: dict[str, dict[str, object]] = {}
    edges: set[tuple[str, str, int | None]] = set()

    def record(node: LineageNode) -> None:
        nodes[node.ref] = {
            "ref": node.ref,
            "kind": node.kind,
            "run_id": node.run_id,
            "run_kind": node.run_kind,
        }

    def visit_up(node: LineageNode) -> None:
        record(node)
        for parent in node.parents:
            edges.add((parent.ref, node.ref, node.run_id))
            visit_up(parent)

    def visit_down(source: str, children: list[LineageNode]) -> None:
        for child in children:
            record(child)
            edges.add((source, child.ref, child.run_id))
            visit_down(child.ref, child.parents)

    visit_up(lineage.upstream)
    visit_down(lineage.ref, lineage.downstream)
    return {
        "ref": lineage.ref,
        "nodes": sorted(nodes.values(), key=lambda n: str(n["ref"])),
        "edges": [{"from": a, "to": b, "run_id": r} for a, b, r in sorted(edges, key=lambda e: (e[0], e[1]))],
    }
