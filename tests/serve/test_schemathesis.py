"""Schemathesis against a real running server on tiny models, every check on: generated requests
(valid and not) to every operation of ``/openapi.json`` get no 5xx, and every answer matches what the
schema documents (status, content type, body).

Semantic refusals of schema-valid requests are expected, not failures: a model name the server does
not serve (404), a text too long or blank (413/422), the wrong task for the model (400). The number
of examples per operation is bounded so that the run takes well under a minute on 2 cores.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from fmstack.serve import RunningServer

SCHEMATHESIS = str(Path(sys.executable).parent / "schemathesis")
CONFIG = """
[checks.positive_data_acceptance]
expected-statuses = ["2xx", "400", "404", "413", "422"]
"""


@pytest.mark.slow
def test_schemathesis_finds_no_5xx_and_no_schema_violation(
    serve: Callable[..., RunningServer], tmp_path: Path
) -> None:
    server = serve(["acme/intent", "acme/embed"], max_inputs=64)
    config = tmp_path / "schemathesis.toml"
    config.write_text(CONFIG)
    command = [
        SCHEMATHESIS,
        "--config-file",
        str(config),
        "--no-color",
        "run",
        f"{server.url}/openapi.json",
        "--checks",
        "all",
        "--max-examples",
        "8",
        "--seed",
        "22",
        "--workers",
        "1",
        "--request-timeout",
        "20",
    ]
    run = subprocess.run(command, capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-2000:]
