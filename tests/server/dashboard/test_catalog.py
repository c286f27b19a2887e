"""The home page's cross-repo queries (server/dashboard/catalog.py) on SQLite and PostgreSQL: counts,
recent versions, search and aliases see exactly the repos a caller may read."""

from __future__ import annotations

from pathlib import Path

from fmstack.server.access import ANONYMOUS, Principal
from fmstack.server.app import open_hub
from fmstack.server.dashboard import catalog
from fmstack.server.settings import ServerSettings
from fmstack.server.visibility import set_visibility

ALICE = Principal("alice", frozenset({"read", "write"}), roles={"acme": "read"})
BOB = Principal("bob", frozenset({"read", "write"}))


def test_catalog_queries_follow_the_access_rules(server_settings: ServerSettings, tmp_path: Path) -> None:
    hub, _accounts = open_hub(server_settings)
    try:
        for repo, kind, card in (
            ("acme/clf", "model", "# Intent classifier 100%_done"),
            ("acme/raw", "dataset", "# Raw rows"),
            ("bob/secret", "model", "# Zebra"),
        ):
            folder = tmp_path / repo.replace("/", "-")
            folder.mkdir()
            for n in (1, 2):
                (folder / "config.json").write_text(f'{{"{repo}": {n}}}')
                hub.push(repo, folder, kind, card=card)  # type: ignore[arg-type]
        hub.tag("acme/clf:1", "production")
        hub.tag("acme/clf:2", "staging")
        set_visibility(hub, "acme/clf", "public")

        assert catalog.counts(hub, ANONYMOUS) == catalog.Counts({"model": 1}, 2)
        assert catalog.counts(hub, ALICE) == catalog.Counts({"model": 1, "dataset": 1}, 4)
        assert catalog.counts(hub, BOB) == catalog.Counts({"model": 2}, 4)
        assert [f"{v.repo}:{v.number}" for v in catalog.recent_versions(hub, ALICE)] == [
            "acme/raw:2",
            "acme/raw:1",
            "acme/clf:2",
            "acme/clf:1",
        ]
        assert catalog.search(hub, ALICE, "ZEBRA") == []
        assert catalog.search(hub, BOB, "zebra") == [("bob/secret", "model", "card")]
        assert catalog.search(hub, ALICE, "dataset") == [("acme/raw", "dataset", "kind")]
        assert catalog.search(hub, ANONYMOUS, "acme") == [("acme/clf", "model", "name")]
        assert catalog.search(hub, ALICE, "%_") == [("acme/clf", "model", "card")]  # LIKE wildcards are text
        assert catalog.search(hub, ALICE, "  ") == []
        assert catalog.aliases(hub, ["acme/clf"]) == {"acme/clf:1": ["production"], "acme/clf:2": ["staging"]}
        assert catalog.aliases(hub, ["acme/raw"]) == {}
    finally:
        hub.close()
