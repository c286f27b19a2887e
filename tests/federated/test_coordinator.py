"""The coordinator on a real hub server process: federation-scoped tokens, a poisoned update rejected
with its reason, the server killed mid-round and restarted (the round goes on from the database), a
straggler left out at the deadline, a client process killed mid-round that rejoins, and the lineage
of each round's global adapter to the clients' runs."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import torch
import yaml
from safetensors.torch import load, save

from fmstack.hub import Hub
from fmstack.settings import Settings
from tests.server.conftest import RunningHub, fmstack, launch
from tests.tiny import LABELS
from tests.train.conftest import push_tiny_bert

FED = "admin/fed"


def _api(server: RunningHub, token: str, method: str, path: str, **kwargs: object) -> httpx.Response:
    url = f"{server.url}/api/v1/federations{path}"
    return httpx.request(method, url, headers={"Authorization": f"Bearer {token}"}, timeout=120, **kwargs)  # type: ignore[arg-type]


def _nudged(server: RunningHub, token: str, number: int, by: float) -> bytes:
    """The round's global weights, moved a little: a well-formed update without training."""
    weights = load(_api(server, token, "GET", f"/{FED}/rounds/{number}/global").content)
    return save({k: v + by for k, v in weights.items()})


def _submit(
    server: RunningHub, token: str, number: int, body: bytes, examples: int = 10
) -> dict[str, object]:
    response = _api(
        server, token, "POST", f"/{FED}/rounds/{number}/updates", params={"examples": examples}, content=body
    )
    assert response.status_code == 200, response.text
    result: dict[str, object] = response.json()
    return result


def test_rounds_survive_a_coordinator_restart_and_leave_out_bad_late_and_dead_clients(tmp_path: Path) -> None:
    home = tmp_path / "server-home"
    with Hub(Settings.at(home)) as hub:
        base = push_tiny_bert(hub, tmp_path / "src")
    server = launch(home)
    port, admin = server.url.rsplit(":", 1)[1], server.token
    try:
        spec = {
            "name": FED,
            "base": base,
            "labels": sorted(LABELS),
            "rounds": 3,
            "clients_per_round": 2,
            "min_clients": 1,
            "round_deadline_s": 600,
            "max_update_norm": 50.0,
            "local": {"max_steps": 2, "batch_size": 8},
        }
        spec_file = tmp_path / "fed.yaml"
        spec_file.write_text(yaml.safe_dump(spec))
        env = {**server.env, "FMSTACK_HUB_URL": server.url, "FMSTACK_HUB_TOKEN": server.token}
        started = json.loads(fmstack(env, "fed", "start", str(spec_file), "--json").stdout)
        assert started["round"] == 1 and started["global_ref"] == f"{FED}:1"
        a, b = (
            _api(server, server.token, "POST", f"/{FED}/clients", json={"client": c}).json()["token"]
            for c in ("bank-a", "bank-b")
        )

        # A federation token opens nothing else on the server, and only its own federation.
        assert httpx.get(f"{server.url}/api/v1/repos", headers=server.headers(a)).status_code == 401
        assert _api(server, a, "GET", "/admin/other/task").status_code == 401

        # Poisoned: NaN weights, and a huge step. Both refused with the reason; the round goes on.
        weights = load(_api(server, a, "GET", f"/{FED}/rounds/1/global").content)
        nan = save({k: torch.full_like(v, float("nan")) for k, v in weights.items()})
        assert "NaN" in str(_submit(server, a, 1, nan)["reason"])
        huge = _submit(server, a, 1, _nudged(server, a, 1, 100.0))
        assert huge["status"] == "rejected" and "bound" in str(huge["reason"])
        assert _submit(server, a, 1, _nudged(server, a, 1, 0.01))["status"] == "accepted"

        # The coordinator dies mid-round (1 of 2 updates in) and comes back on the same database.
        server.stop(signal.SIGKILL)
        server = launch(home, admin=None, port=int(port))
        assert _api(server, b, "GET", f"/{FED}/task").json()["action"] == "train"
        assert _submit(server, b, 1, _nudged(server, b, 1, 0.03), examples=30)["status"] == "accepted"
        status = _api(server, admin, "GET", f"/{FED}").json()
        one = status["rounds"][0]
        assert one["status"] == "closed" and one["output_ref"] == f"{FED}:2"
        assert [u["status"] for u in one["updates"]] == ["rejected", "rejected", "accepted", "accepted"]
        # Exact FedAvg: (10 * 0.01 + 30 * 0.03) / 40 = 0.025 on every weight.
        with Hub(Settings.at(home)) as hub:
            new = load((hub.checkout(f"{FED}:2") / "adapter_model.safetensors").read_bytes())
            key = next(iter(new))
            assert torch.allclose(new[key] - weights[key], torch.full_like(weights[key], 0.025), atol=1e-6)
            lineage = hub.lineage(f"{FED}:2")
            parents = {p.ref for p in lineage.upstream.parents}
            assert f"{FED}:1" in parents and {f"{FED}-updates:1", f"{FED}-updates:2"} <= parents

        # Round 2: bank-b's update is in; bank-a's process is killed mid-round; at the deadline the
        # round closes without it, and its late update is left out.
        _submit(server, b, 2, _nudged(server, b, 2, 0.01))
        join = [
            sys.executable,
            "-m",
            "fmstack",
            "fed",
            "join",
            "--server",
            server.url,
            "--federation",
            FED,
            "--data",
            "test/local",
            "--token",
            a,
            "--threads",
            "1",
            "--max-rounds",
            "1",
        ]
        killed = subprocess.Popen(join, env=server.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(1.0)
        killed.kill()
        killed.wait()
        _set_deadline(home, 2)  # as if round 2 had waited its time
        assert _api(server, a, "GET", f"/{FED}/task").json()["round"] == 3
        assert _submit(server, a, 2, _nudged(server, a, 2, 0.01))["status"] == "late"

        # bank-a rejoins with its own data and trains round 3 for real.
        _push_local_data(home)
        rejoined = subprocess.run(join, env=server.env, capture_output=True, text=True, timeout=300)
        assert rejoined.returncode == 0, rejoined.stderr
        status = _api(server, a, "GET", f"/{FED}").json()
        three = status["rounds"][2]["updates"]
        assert [(u["client"], u["status"]) for u in three] == [("bank-a", "accepted")]
        assert three[0]["bytes"] > 0 and three[0]["metrics"]["train_loss"] > 0
    finally:
        server.stop()


def _set_deadline(home: Path, number: int) -> None:
    from sqlalchemy import create_engine, text

    engine = create_engine(f"sqlite:///{home / 'fmstack.db'}")
    with engine.begin() as conn:
        conn.execute(
            text("UPDATE server_fed_rounds SET deadline_at = :t WHERE number = :n"),
            {"t": "2000-01-01 00:00:00.000000", "n": number},
        )
    engine.dispose()


def _push_local_data(home: Path) -> None:
    from tests.train.conftest import classification_table, push_dataset

    with Hub(Settings.at(home)) as hub:
        push_dataset(
            hub, home / "src", "test/local", {"train": classification_table(24, 3)}, labels=sorted(LABELS)
        )
