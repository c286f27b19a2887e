"""The coordinator's state on SQLite and on a real PostgreSQL: a round of two updates aggregated
exactly, FedAdam's moments kept in the federation row, a refused update recorded with its reason."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save

from fmstack.server.app import open_hub
from fmstack.server.federation.coordinator import Coordinator
from fmstack.server.settings import ServerSettings
from fmstack.settings import Settings
from tests.hub.conftest import postgres_database
from tests.tiny import LABELS
from tests.train.conftest import push_tiny_bert

__all__ = ["postgres_database"]


@pytest.fixture(params=["sqlite", "postgres"])
def settings(request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    home = tmp_path / "home"
    if request.param == "sqlite":
        return Settings.at(home)
    url = request.getfixturevalue("postgres_database")
    return Settings(home=home, database_url=url, store_url=str(home / "blobs"))


def test_a_fedadam_round_on_the_store(settings: Settings, tmp_path: Path) -> None:
    hub, _ = open_hub(ServerSettings(hub=settings))
    try:
        from fmstack.federated.spec import parse_spec

        base = push_tiny_bert(hub, tmp_path / "src")
        spec = parse_spec(
            {
                "name": "acme/fed",
                "base": base,
                "labels": sorted(LABELS),
                "rounds": 2,
                "clients_per_round": 2,
                "strategy": "fedadam",
                "server_lr": 0.1,
            }
        )
        coordinator = Coordinator(hub)
        coordinator.start(spec, "ann")
        for client in ("a", "b"):
            coordinator.add_client("acme/fed", client)
        global_ = load_file(str(coordinator.global_file("acme/fed", 1)))
        bad = coordinator.submit("acme/fed", "a", 1, b"not safetensors", 5, {})
        assert bad.status == "rejected" and "safetensors" in bad.reason
        for client, by in (("a", 0.01), ("b", -0.02)):
            body = save({k: v + by for k, v in global_.items()})
            assert (
                coordinator.submit("acme/fed", client, 1, body, 10, {"train_loss": 1.0}).status == "accepted"
            )
        status = coordinator.status("acme/fed")
        assert status.round == 2 and status.rounds[0].output_ref == "acme/fed:2"
        new = load_file(str(coordinator.global_file("acme/fed", 2)))
        key = next(iter(new))
        # mean delta d = -0.005 everywhere; FedAdam's first step: lr * 0.1 d / (0.1 |d| + tau), tau = 1e-3
        expected = 0.1 * 0.1 * -0.005 / (0.1 * 0.005 + 1e-3)
        assert torch.allclose(new[key] - global_[key], torch.full_like(new[key], expected), atol=1e-5)
        assert status.rounds[0].metrics["client_train_loss"] == 1.0
    finally:
        hub.close()
