"""Cards, alias history, lineage and runs over HTTP (routes/metadata.py): what a caller may not read
stays out of graphs and run lists."""

from __future__ import annotations

from pathlib import Path

from fmstack.server.visibility import set_visibility
from tests.hub.folders import make_folder
from tests.server.conftest import AppHub


def _lineage_pair(app_hub: AppHub, tmp_path: Path) -> int:
    """acme/base:1 (private) --train run--> acme/tuned:1 (public); the run's id."""
    app_hub.accounts.add("acme", "org")
    hub = app_hub.hub
    hub.push("acme/base", make_folder(tmp_path / "base", {"w.safetensors": "base"}), "model")
    run_id = hub.runs.start("train", {"lr": 0.1}, inputs=["acme/base:1"])
    hub.push(
        "acme/tuned", make_folder(tmp_path / "tuned", {"w.safetensors": "tuned"}), "adapter", run_id=run_id
    )
    hub.runs.finish(run_id)
    set_visibility(hub, "acme/tuned", "public")
    return run_id


def test_lineage_hides_repos_the_caller_may_not_read(app_hub: AppHub, tmp_path: Path) -> None:
    _lineage_pair(app_hub, tmp_path)
    member = app_hub.user("bob", "read", org="acme", role="read")
    url = "/api/v1/repos/acme/tuned/versions/1/lineage"
    full = app_hub.client.get(url, headers=app_hub.headers(member)).json()
    assert [p["ref"] for p in full["upstream"]["parents"]] == ["acme/base:1"]
    public = app_hub.client.get(url).json()
    assert public["upstream"]["ref"] == "acme/tuned:1" and public["upstream"]["parents"] == []
    assert "acme/base" not in str(public)


def test_runs_are_listed_to_those_who_may_read_all_they_touched(app_hub: AppHub, tmp_path: Path) -> None:
    run_id = _lineage_pair(app_hub, tmp_path)
    member = app_hub.user("bob", "read", org="acme", role="read")
    listed = app_hub.client.get("/api/v1/runs", headers=app_hub.headers(member)).json()
    assert [r["id"] for r in listed] == [run_id]
    assert app_hub.client.get("/api/v1/runs").json() == []
    assert app_hub.client.get(f"/api/v1/runs/{run_id}").status_code == 404
    shown = app_hub.client.get(f"/api/v1/runs/{run_id}", headers=app_hub.headers(member)).json()
    assert shown["inputs"] == ["acme/base:1"] and shown["outputs"] == ["acme/tuned:1"]


def test_cards_are_read_and_set_with_an_audit_entry(app_hub: AppHub, tmp_path: Path) -> None:
    app_hub.hub.push("admin/m", make_folder(tmp_path / "m", {"w.safetensors": "m"}), "model")
    url = "/api/v1/repos/admin/m/versions/1/card"
    put = app_hub.client.put(url, json={"text": "# A model\n"}, headers=app_hub.headers())
    assert put.status_code == 200
    assert app_hub.client.get(url, headers=app_hub.headers()).json() == {"text": "# A model\n"}
    assert app_hub.accounts.audit_log()[0].action == "card"


def test_alias_history_over_http(app_hub: AppHub, tmp_path: Path) -> None:
    app_hub.hub.push("admin/m", make_folder(tmp_path / "m", {"w.safetensors": "m"}), "model")
    app_hub.hub.tag("admin/m:1", "prod")
    events = app_hub.client.get("/api/v1/repos/admin/m/aliases", headers=app_hub.headers()).json()
    assert [(e["alias"], e["old"], e["new"]) for e in events] == [("prod", None, 1)]
