"""The lineage graph of a version as an SVG picture: upstream on the left, the version in the middle,
downstream on the right; each version a box linking to its page, each edge labelled with the run that
made the right-hand version (linking to the run), and the aliases of a version tagged in its box.

Input is the lineage the API answers (``routes/metadata.lineage``), already cut down to the nodes the
caller may read, so nothing here decides visibility. The layout is by column: a node's column is its
distance from the version (negative upstream), rows in the order nodes are met.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from markupsafe import Markup, escape

BOX_W, BOX_H, COL_GAP, ROW_GAP, PAD = 210, 46, 90, 26, 12
KIND_COLOUR = {"dataset": "#E8F1FA", "model": "#FDF0E6", "adapter": "#E8F6F0"}


@dataclass
class Node:
    ref: str
    kind: str
    column: int
    row: int = 0


@dataclass
class Layout:
    nodes: dict[str, Node] = field(default_factory=dict)
    edges: set[tuple[str, str, int | None, str | None]] = field(default_factory=set)  # from, to, run


def version_href(ref: str) -> str:
    repo, _, number = ref.rpartition(":")
    return f"/repos/{quote(repo)}/versions/{quote(number)}"


def layout(lineage: Mapping[str, Any]) -> Layout:
    """Columns and rows of every node of an API lineage answer (``upstream`` tree, ``downstream`` list)."""
    out = Layout()

    def place(node: Mapping[str, Any], column: int) -> None:
        if node["ref"] not in out.nodes:
            out.nodes[node["ref"]] = Node(node["ref"], node["kind"], column)

    def up(node: Mapping[str, Any], column: int) -> None:
        place(node, column)
        for parent in node["parents"]:
            out.edges.add((parent["ref"], node["ref"], node["run_id"], node["run_kind"]))
            up(parent, column - 1)

    def down(source: str, children: list[Mapping[str, Any]], column: int) -> None:
        for child in children:
            place(child, column)
            out.edges.add((source, child["ref"], child["run_id"], child["run_kind"]))
            down(child["ref"], child["parents"], column + 1)

    if lineage.get("upstream") is not None:
        up(lineage["upstream"], 0)
    down(lineage["ref"], lineage.get("downstream", []), 1)
    rows: dict[int, int] = {}
    for node in out.nodes.values():
        node.row = rows.get(node.column, 0)
        rows[node.column] = node.row + 1
    return out


def svg(lineage: Mapping[str, Any], aliases: Mapping[str, list[str]]) -> Markup:
    """The picture; ``aliases`` maps a ref to the aliases that point at it."""
    plan = layout(lineage)
    if not plan.nodes:
        return Markup("")
    first = min(n.column for n in plan.nodes.values())
    columns = max(n.column for n in plan.nodes.values()) - first + 1
    rows = max(n.row for n in plan.nodes.values()) + 1
    width = PAD * 2 + columns * BOX_W + (columns - 1) * COL_GAP
    height = PAD * 2 + rows * BOX_H + (rows - 1) * ROW_GAP

    def x(node: Node) -> int:
        return PAD + (node.column - first) * (BOX_W + COL_GAP)

    def y(node: Node) -> int:
        return PAD + node.row * (BOX_H + ROW_GAP)

    body = [
        '<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" markerHeight="7" '
        'orient="auto-start-reverse"><path d="M 0 0 L 10 5 L 0 10 z" fill="#555"/></marker></defs>'
    ]
    for source, target, run_id, run_kind in sorted(plan.edges, key=lambda e: (e[0], e[1])):
        a, b = plan.nodes.get(source), plan.nodes.get(target)
        if a is None or b is None:
            continue
        x1, y1, x2, y2 = x(a) + BOX_W, y(a) + BOX_H / 2, x(b), y(b) + BOX_H / 2
        body.append(f'<line x1="{x1}" y1="{y1}" x2="{x2}" y2="{y2}" class="edge" marker-end="url(#arrow)"/>')
        if run_id is not None:
            label = escape(f"run {run_id}" + (f" {run_kind}" if run_kind else ""))
            body.append(
                f'<a href="/runs/{run_id}"><text x="{(x1 + x2) / 2:.0f}" y="{(y1 + y2) / 2 - 5:.0f}" '
                f'text-anchor="middle" class="edge-label">{label}</text></a>'
            )
    focus = lineage["ref"]
    for node in plan.nodes.values():
        body.append(_box(node, x(node), y(node), node.ref == focus, aliases.get(node.ref, [])))
    label = escape(f"lineage of {focus}")
    return Markup(
        f'<svg class="lineage" viewBox="0 0 {width} {height}" width="{width}" role="group" '
        f'aria-label="{label}" xmlns="http://www.w3.org/2000/svg"><title>{label}</title>'
        + "".join(body)
        + "</svg>"
    )


def _box(node: Node, left: int, top: int, focus: bool, aliases: list[str]) -> str:
    fill = KIND_COLOUR.get(node.kind, "#eee")
    stroke = ' stroke-width="3"' if focus else ""
    ref = node.ref if len(node.ref) <= 30 else "…" + node.ref[-29:]
    tags = " ".join(f"@{a}" for a in aliases)
    tags = tags if len(tags) <= 24 else tags[:23] + "…"
    parts = [
        f'<a href="{escape(version_href(node.ref))}" class="node">',
        f'<rect x="{left}" y="{top}" width="{BOX_W}" height="{BOX_H}" rx="6" fill="{fill}" stroke="#333"{stroke}/>',
        f'<text x="{left + 8}" y="{top + 19}" class="node-ref">{escape(ref)}</text>',
        f'<text x="{left + 8}" y="{top + 36}" class="node-kind">{escape(node.kind)}',
        f'<tspan class="alias"> {escape(tags)}</tspan>' if tags else "",
        "</text></a>",
    ]
    return "".join(parts)
