"""One rank of a ``torchrun`` training job (see ``launch.py``): ``python -m fmstack.train.worker JOB``."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

from fmstack.errors import FmstackError
from fmstack.hub import Hub
from fmstack.settings import Settings
from fmstack.train.fit import fit_here
from fmstack.train.spec import TrainSpec


def run_job(job: dict[str, Any]) -> int:
    """Fit one rank of a job; rank 0 writes the outcome (or the typed error) to the result file."""
    result = Path(job["result"])
    rank0 = os.environ.get("RANK", "0") == "0"  # set by torchrun / Ray Train: the launcher's contract
    try:
        settings = Settings(**{**job["settings"], "home": Path(job["settings"]["home"])})
        with Hub(settings) as hub:
            spec = TrainSpec.model_validate(job["spec"])
            outcome = fit_here(hub, spec, job["run_id"], Path(job["output"]), None)
    except FmstackError as exc:
        if rank0:
            result.write_text(json.dumps({"error": type(exc).__name__, "message": str(exc)}))
        return 1
    if rank0:
        result.write_text(json.dumps(outcome))
    return 0


def main(argv: list[str]) -> int:
    return run_job(json.loads(Path(argv[0]).read_text()))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
