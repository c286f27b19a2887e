"""The dashboard's read-only pages: home (search, recent versions, counts), repo, version (with its
lineage graph), dataset version, runs and run comparison.

Access is the API's, reused rather than restated: ``require_read`` for a repo, the API's lineage
answer (already cut to what the caller may read) for the graph, ``readable_run`` / ``visible_run`` for
runs, ``may_read_ref`` for the refs a page links to.
"""

from __future__ import annotations

import json
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query
from starlette.requests import Request
from starlette.responses import Response

from fmstack.errors import NotFound
from fmstack.hub import Hub
from fmstack.hub.entities import RunInfo
from fmstack.server.access import Principal, require_read
from fmstack.server.dashboard import catalog, charts, graph
from fmstack.server.dashboard.cards import render_card
from fmstack.server.dashboard.web import DashboardRoute, page, state_of, viewer
from fmstack.server.paths import LARGEST_NUMBER, repo_of
from fmstack.server.routes import metadata
from fmstack.server.routes.metadata import may_read_ref
from fmstack.server.routes.runs import readable_run, visible_run
from fmstack.server.visibility import repo_visibility

router = APIRouter(route_class=DashboardRoute, include_in_schema=False)
Who = Annotated[Principal, Depends(viewer)]
Number = Annotated[int, Path(ge=1, le=LARGEST_NUMBER)]
VERSIONS_PAGE = 50
RUNS_PAGE = 50
LOG_CHARS = 200_000  # the tail of a run's log shown on its page
COMPARE_MAX = 8


def _hub(request: Request) -> Hub:
    hub: Hub = request.app.state.hub
    return hub


@router.get("/")
def home(request: Request, who: Who, q: Annotated[str, Query(max_length=200)] = "") -> Response:
    hub = _hub(request)
    return page(
        request,
        "home.html",
        who,
        q=q,
        results=catalog.search(hub, who, q) if q.strip() else None,
        counts=catalog.counts(hub, who),
        recent=catalog.recent_versions(hub, who),
    )


@router.get("/repos/{namespace}/{name}")
def repo(
    request: Request,
    who: Who,
    namespace: str,
    name: str,
    page_: Annotated[int, Query(alias="page", ge=1)] = 1,
) -> Response:
    hub, repo = _hub(request), repo_of(namespace, name)
    require_read(hub, who, repo)
    versions = list(reversed(hub.versions(repo)))
    shown = versions[(page_ - 1) * VERSIONS_PAGE : page_ * VERSIONS_PAGE]
    latest = hub.info(versions[0].ref) if versions else None
    by_version = catalog.aliases(hub, [repo])
    meta, card = render_card(latest.card) if latest is not None else ({}, None)
    return page(
        request,
        "repo.html",
        who,
        repo=repo,
        kind=versions[0].kind if versions else "",
        visibility=repo_visibility(hub, repo),
        count=len(versions),
        aliases=sorted(
            (alias, ref.rpartition(":")[2]) for ref, names in by_version.items() for alias in names
        ),
        versions=shown,
        page=page_,
        pages=max(1, -(-len(versions) // VERSIONS_PAGE)),
        history=list(reversed(hub.alias_history(repo)))[:100],
        latest=latest,
        meta=meta,
        card=card,
        base_url=str(request.base_url).rstrip("/"),
    )


@router.get("/repos/{namespace}/{name}/versions/{number}")
def version(request: Request, who: Who, namespace: str, name: str, number: Number) -> Response:
    hub, repo = _hub(request), repo_of(namespace, name)
    require_read(hub, who, repo)
    detail = hub.info(f"{repo}:{number}")
    lineage = metadata.lineage(request, who, namespace, name, str(number))
    meta, card = render_card(detail.card)
    return page(
        request,
        "version.html",
        who,
        detail=detail,
        meta=meta,
        card=card,
        graph=graph.svg(
            lineage, catalog.aliases(hub, {ref.rpartition(":")[0] for ref in graph.layout(lineage).nodes})
        ),
        inputs=[r for r in detail.inputs if may_read_ref(hub, who, r)],
        used_by=[r for r in detail.used_by if may_read_ref(hub, who, r)],
        run=_run_or_none(hub, who, detail.version.run_id),
    )


@router.get("/repos/{namespace}/{name}/versions/{number}/data")
def dataset(request: Request, who: Who, namespace: str, name: str, number: Number) -> Response:
    hub, repo = _hub(request), repo_of(namespace, name)
    require_read(hub, who, repo)
    found = hub.resolve(f"{repo}:{number}")
    if found.kind != "dataset":
        raise NotFound(
            f"{found.ref} is {found.kind}, not a dataset: its page is /repos/{repo}/versions/{number}"
        )
    view = state_of(request).datasets.get(hub, found.ref, found.digest)
    return page(
        request,
        "dataset.html",
        who,
        version=found,
        view=view,
        labels_chart=charts.bar_chart(f"labels of {found.ref}", view.labels),
        lengths_chart=charts.histogram(
            f"text length of {found.ref}", view.edges, view.counts, "text length (characters)"
        ),
    )


@router.get("/runs")
def runs(request: Request, who: Who, kind: Annotated[str | None, Query(max_length=32)] = None) -> Response:
    hub = _hub(request)
    # Newest first, those this visitor may see among a bounded look back (as the API's run list).
    readable: dict[str, bool] = {}  # repo -> may the visitor read it: each repo asked once per page

    def may_read(ref: str) -> bool:
        repo = ref.rpartition(":")[0]
        if repo not in readable:
            readable[repo] = may_read_ref(hub, who, ref)
        return readable[repo]

    recent = hub.runs.recent(kind=kind or None, limit=RUNS_PAGE * 2)
    found = [r for r in recent if visible_run(hub, who, r, may_read)]
    return page(request, "runs.html", who, runs=found[:RUNS_PAGE], kind=kind or "")


@router.get("/runs/compare")
def compare(request: Request, who: Who, id_: Annotated[list[int], Query(alias="id")]) -> Response:
    hub = _hub(request)
    chosen = [readable_run(hub, who, run_id) for run_id in dict.fromkeys(id_)][:COMPARE_MAX]
    curves = {run.id: _curves(hub, run.id) for run in chosen}
    names = sorted({n for c in curves.values() for n in c}, key=_metric_order)
    figures = [
        charts.line_chart(
            name,
            [
                charts.Series(f"run {run_id}", curves[run_id][name], marked=name.startswith("eval"))
                for run_id in curves
                if name in curves[run_id]
            ],
        )
        for name in names
    ]
    return page(request, "compare.html", who, runs=chosen, figures=list(zip(names, figures, strict=True)))


@router.get("/runs/{run_id}")
def run(request: Request, who: Who, run_id: Annotated[int, Path(ge=1, le=LARGEST_NUMBER)]) -> Response:
    hub = _hub(request)
    info = readable_run(hub, who, run_id)
    curves = _curves(hub, run_id)
    evaluations = sorted(
        {step for name, points in curves.items() if name.startswith("eval") for step, _ in points}
    )
    figures = [
        (
            name,
            charts.line_chart(
                name,
                [charts.Series(name, curves[name], marked=name.startswith("eval"))],
                marks=() if name.startswith("eval") else evaluations,
            ),
        )
        for name in sorted(curves, key=_metric_order)
    ]
    logs = hub.runs.logs(run_id)
    return page(
        request,
        "run.html",
        who,
        run=info,
        spec=json.dumps(info.spec, indent=2, sort_keys=True, default=str),
        environment=info.environment,
        figures=figures,
        logs=logs[-LOG_CHARS:],
        logs_clipped=len(logs) > LOG_CHARS,
    )


def _curves(hub: Hub, run_id: int) -> dict[str, list[tuple[float, float]]]:
    curves: dict[str, list[tuple[float, float]]] = {}
    for metric in hub.runs.metrics(run_id):
        curves.setdefault(metric.name, []).append((float(metric.step), metric.value))
    return curves


def _metric_order(name: str) -> tuple[int, str]:
    """loss, then accuracy-like and eval metrics, then the learning rate, then the rest."""
    first = ("loss", "eval_loss", "eval_accuracy", "accuracy", "lr", "learning_rate")
    return (first.index(name) if name in first else len(first), name)


def _run_or_none(hub: Hub, who: Principal, run_id: int | None) -> RunInfo | None:
    if run_id is None:
        return None
    run = hub.runs.get(run_id)
    return run if visible_run(hub, who, run) else None
