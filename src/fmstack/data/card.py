"""The card of a dataset version: front matter for machines, Markdown tables for people.

Sections: schema, rows per split, label distribution, text (and token) length percentiles, then the
producer's own sections (ingest: sources and rejected rows; process: what each op did)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from fmstack.data.stats import DatasetStats
from fmstack.hub.cards import CardMeta, render_card

TOP_LABELS = 30


def table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join("---" for _ in header) + " |"]
    lines += ["| " + " | ".join(str(c).replace("|", "\\|") for c in row) + " |" for row in rows]
    return "\n".join(lines)


def _label_section(stats: DatasetStats) -> str:
    splits = [s for s in stats.splits if s != "rejected" and stats.splits[s].labels]
    if not splits:
        return ""
    totals: dict[str, int] = {}
    for s in splits:
        for label, n in stats.splits[s].labels.items():
            totals[label] = totals.get(label, 0) + n
    ordered = sorted(totals, key=lambda k: (-totals[k], k))
    rows = [
        [label, *(stats.splits[s].labels.get(label, 0) for s in splits)] for label in ordered[:TOP_LABELS]
    ]
    more = f"\n\n{len(ordered) - TOP_LABELS} more labels not shown." if len(ordered) > TOP_LABELS else ""
    return f"## Labels\n\n{len(ordered)} labels.\n\n" + table(["label", *splits], rows) + more


def _lengths_section(stats: DatasetStats) -> str:
    out = []
    for title, attr in (("Text length (characters)", "text_chars"), ("Length (tokens)", "tokens")):
        rows = [[s, *getattr(v, attr).values()] for s, v in stats.splits.items() if getattr(v, attr)]
        if rows:
            points = list(next(getattr(v, attr) for v in stats.splits.values() if getattr(v, attr)))
            out.append(f"## {title}\n\n" + table(["split", *points], rows))
    return "\n\n".join(out)


def render(title: str, stats: DatasetStats, sections: Sequence[str], extra_meta: dict[str, Any]) -> str:
    rows = {name: s.rows for name, s in stats.splits.items()}
    meta = CardMeta(
        tags=["dataset", "fmstack-data"],
        **{"rows": rows, "columns": list(stats.schema), **extra_meta},
    )
    body = [
        f"# {title}",
        "## Schema\n\n" + table(["column", "type"], list(stats.schema.items())),
        "## Rows\n\n" + table(["split", "rows"], list(rows.items())),
        _label_section(stats),
        _lengths_section(stats),
        *sections,
    ]
    return render_card(meta, "\n\n".join(part for part in body if part) + "\n")
