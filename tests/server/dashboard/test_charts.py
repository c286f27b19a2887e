"""SVG charts and the lineage picture (server/dashboard/charts.py, graph.py): shapes, escaping, layout."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from fmstack.server.dashboard import charts, graph

SVG = "{http://www.w3.org/2000/svg}"


def _parse(markup: str) -> ET.Element:
    return ET.fromstring(markup)  # well-formed XML, or this raises


def test_a_line_chart_draws_one_line_per_series_and_marks_evaluations() -> None:
    svg = _parse(
        charts.line_chart(
            "loss <&>",
            [
                charts.Series("run 1", [(0, 2.0), (10, 1.0), (20, float("nan")), (30, 0.5)]),
                charts.Series("run <2>", [(5, 1.5), (25, 0.7)], marked=True),
            ],
        )
    )
    assert svg.find(f"{SVG}title").text == "loss <&>"  # type: ignore[union-attr]
    lines = svg.findall(f"{SVG}polyline")
    assert [len(line.attrib["points"].split()) for line in lines] == [3, 2]  # the NaN point is left out
    assert len(svg.findall(f"{SVG}circle")) == 2
    assert "run <2>" in [t.text for t in svg.iter(f"{SVG}text")]


def test_long_series_are_thinned_to_a_bounded_number_of_points() -> None:
    points = [(float(i), float(i % 7)) for i in range(50_000)]
    svg = _parse(charts.line_chart("long", [charts.Series("s", points)]))
    drawn = svg.find(f"{SVG}polyline").attrib["points"].split()  # type: ignore[union-attr]
    assert len(drawn) == charts.MAX_POINTS
    assert drawn[-1].startswith(f"{charts.WIDTH - charts.RIGHT:.1f},")  # the last step is kept


def test_charts_without_data_say_so() -> None:
    assert "no values" in charts.line_chart("x", [charts.Series("s", [])])
    assert "no labels" in charts.bar_chart("x", [])
    assert "no rows" in charts.histogram("x", [], [], "chars")


def test_bar_and_histogram_heights_follow_the_counts() -> None:
    bars = _parse(charts.bar_chart("labels", [("a", 10), ("b", 5)]))
    widths = [float(r.attrib["width"]) for r in bars.iter(f"{SVG}rect")]
    assert widths[0] == 2 * widths[1]
    hist = _parse(charts.histogram("lengths", [0, 10, 20], [4, 2], "chars"))
    heights = [float(r.attrib["height"]) for r in hist.iter(f"{SVG}rect")]
    assert heights[0] == 2 * heights[1]


def _node(ref: str, kind: str, run: int | None, parents: list[dict[str, object]]) -> dict[str, object]:
    return {"ref": ref, "kind": kind, "run_id": run, "run_kind": "train" if run else None, "parents": parents}


def test_the_lineage_layout_puts_upstream_left_and_downstream_right() -> None:
    lineage = {
        "ref": "a/model:1",
        "upstream": _node("a/model:1", "model", 2, [_node("a/data:1", "dataset", 1, [])]),
        "downstream": [_node("a/int8:1", "model", 3, [_node("a/edge:1", "model", 4, [])])],
    }
    plan = graph.layout(lineage)
    assert {ref: n.column for ref, n in plan.nodes.items()} == {
        "a/model:1": 0,
        "a/data:1": -1,
        "a/int8:1": 1,
        "a/edge:1": 2,
    }
    picture = _parse(graph.svg(lineage, {"a/int8:1": ["production"]}))
    links = [a.attrib["href"] for a in picture.iter(f"{SVG}a")]
    assert "/repos/a/data/versions/1" in links and "/runs/3" in links
    assert "@production" in "".join(picture.itertext())


def test_an_empty_lineage_draws_nothing() -> None:
    assert graph.svg({"ref": "a/b:1", "upstream": None, "downstream": []}, {}) == ""
