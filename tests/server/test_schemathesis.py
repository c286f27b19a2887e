"""Schemathesis against a real hub server: generated requests (valid and not) to every operation of
``/openapi.json``, with an admin token, get no 5xx."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from fmstack.server.client import HubClient
from tests.hub.folders import make_folder
from tests.server.conftest import RunningHub

SCHEMATHESIS = str(Path(sys.executable).parent / "schemathesis")
SCHEMATHESIS_CONFIG = """
[checks.positive_data_acceptance]
expected-statuses = ["2xx", "400", "401", "403", "404", "409", "413", "416", "422", "429"]
"""


@pytest.mark.slow
def test_schemathesis_finds_no_5xx(hub_server: RunningHub, tmp_path: Path) -> None:
    src = make_folder(tmp_path / "src", {"config.json": "{}"})
    with HubClient(hub_server.url, hub_server.token) as pusher:
        pusher.push("admin/m", src, "model")
    config = tmp_path / "schemathesis.toml"
    config.write_text(SCHEMATHESIS_CONFIG)
    command = [
        SCHEMATHESIS,
        "--config-file",
        str(config),
        "--no-color",
        "run",
        f"{hub_server.url}/openapi.json",
        "--checks",
        "not_a_server_error",
        "--header",
        f"Authorization: Bearer {hub_server.token}",
        "--max-examples",
        "6",
        "--seed",
        "13",
        "--workers",
        "1",
        "--request-timeout",
        "30",
    ]
    run = subprocess.run(command, capture_output=True, text=True, timeout=400, cwd=tmp_path)
    assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-2000:]
