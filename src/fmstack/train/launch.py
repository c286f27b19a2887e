"""Multi-process DDP on one node: the parent writes a job file and starts ``torchrun`` over
``fmstack.train.worker``; every rank fits its share of each global batch (Accelerate picks gloo on
CPU, NCCL on GPU) and rank 0 writes the output folder and a result file the parent reads back."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from fmstack import errors
from fmstack.hub import Hub, HubApi
from fmstack.hub.scratch import scratch_dir
from fmstack.train.spec import TrainSpec


def check_rank_hub(hub: HubApi) -> None:
    """Each rank opens the hub again from the job's settings, which name a local hub only: a remote
    hub is refused (before the run is opened, by ``train``) with the way out."""
    if not isinstance(hub, Hub):
        raise errors.Unsupported(
            "distributed training (--nproc over 1, --executor ray) works on the local hub only, and a remote "
            "hub is selected: train with --nproc 1 against it, or pull the base and data with "
            "`fmstack hub pull`, train without --hub and `fmstack --hub URL hub push` the result"
        )


def write_job(hub: HubApi, spec: TrainSpec, run_id: int, folder: Path, tmp: Path) -> tuple[Path, Path]:
    """The job file every rank reads (spec, run, output folder, hub settings); returns (job, result)."""
    check_rank_hub(hub)
    for ref in (spec.base, spec.data, spec.tokenizer):
        if ref:
            hub.checkout(ref)  # fill the checkout cache once, before the ranks race for it
    settings = hub.settings
    job, result = tmp / "job.json", tmp / "result.json"
    job.write_text(
        json.dumps(
            {
                "spec": spec.model_dump(),
                "run_id": run_id,
                "output": str(folder),
                "result": str(result),
                "settings": {
                    "home": str(settings.home),
                    "database_url": settings.database_url,
                    "store_url": settings.store_url,
                    "user": settings.user,
                },
            }
        )
    )
    return job, result


def read_outcome(result: Path) -> dict[str, Any]:
    """Rank 0's result file; a typed error a rank raised is raised again here."""
    outcome: dict[str, Any] = json.loads(result.read_text()) if result.is_file() else {}
    if "error" in outcome:
        error_type = getattr(errors, outcome["error"], errors.FmstackError)
        raise error_type(outcome["message"])
    return outcome


def fit_distributed(hub: HubApi, spec: TrainSpec, run_id: int, folder: Path) -> dict[str, Any]:
    with scratch_dir(hub.settings.home, "ddp") as tmp:  # gc finds a killed job's files there
        job, result = write_job(hub, spec, run_id, folder, tmp)
        command = [
            sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={spec.nproc}",
            "-m", "fmstack.train.worker", str(job),
        ]  # fmt: skip
        proc = subprocess.run(command, capture_output=True, text=True, check=False)
        outcome = read_outcome(result)
    if proc.returncode != 0 or not outcome:
        raise rank_failure("torchrun", proc.returncode, proc.stderr or "")
    return outcome


def rank_failure(launcher: str, code: int | None, stderr: str) -> errors.Unavailable:
    """A training process died of something other than an ``FmstackError`` (those come back typed
    through the result file): killed for memory, a broken process group, a library's own error. The
    way out is that process's own message, and one process, where the error surfaces directly."""
    # The first rank's traceback only: every rank (and torchrun itself) prints its own after it.
    cause = stderr[-3000:]
    if "Traceback" in stderr:
        first = stderr[stderr.find("Traceback") :]
        cause = first[: first.find("Traceback", 1)] if "Traceback" in first[1:] else first
    hint = "train in one process (--nproc 1) to see the error there"
    if "SIGKILL" in stderr or code in (-9, 137):
        hint = "a process was killed (SIGKILL: often out of memory); try a smaller --batch-size or --nproc"
    exit_code = f" (exit code {code})" if code is not None else ""
    return errors.Unavailable(
        f"{launcher} failed{exit_code}; a training process reported:\n"
        f"{errors.clip(cause.strip() or '(nothing)', 3000)}\n{hint}"
    )
