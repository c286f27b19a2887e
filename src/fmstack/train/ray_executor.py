"""``--executor ray``: the same spec on Ray Train. ``TorchTrainer`` starts ``nproc`` workers and sets up
the process group and the torch.distributed environment (RANK, WORLD_SIZE, ...), which Accelerate
picks up; each worker runs the same job as a torchrun rank (``worker.run_job``).

Rank 0 writes the output folder and the result file on its node, so the driver must see that path:
one node, or a shared filesystem. Ray connects to a running cluster when one is configured for it
(``RAY_ADDRESS``), else starts a local one; ``connect_ray`` checks that every node reaches the hub.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from fmstack.data.executors.ray_reach import check_nodes_reach
from fmstack.errors import Unavailable, Unsupported, clip
from fmstack.hub import HubApi
from fmstack.hub.scratch import scratch_dir
from fmstack.settings import Settings
from fmstack.train.launch import rank_failure, read_outcome, write_job
from fmstack.train.spec import TrainSpec


def _train_loop(config: dict[str, Any]) -> None:
    from fmstack.train.worker import run_job

    if run_job(config) != 0:
        raise RuntimeError("a training worker failed; see the run's result for the error")


def connect_ray(settings: Settings) -> None:
    """Start or reach Ray (the cluster at ``RAY_ADDRESS``, read by Ray itself, else a local runtime) and
    check that every node reaches the hub (``ray_reach``): called by ``train`` before its run is
    opened, so a node that cannot fails the command before any work starts."""
    try:
        import ray
    except ImportError:
        raise Unsupported("--executor ray needs the ray extra: pip install 'fmstack[ray]'") from None
    if not ray.is_initialized():
        try:
            ray.init(include_dashboard=False, log_to_driver=False)
        except (ConnectionError, RuntimeError, ValueError) as exc:  # no cluster at RAY_ADDRESS, a bad address
            raise Unavailable(
                f"cannot start or reach Ray ({clip(exc)}); check RAY_ADDRESS, or train without --executor ray"
            ) from None
    check_nodes_reach(settings)


def fit_on_ray(hub: HubApi, spec: TrainSpec, run_id: int, folder: Path, device: str) -> dict[str, Any]:
    try:
        import ray
        from ray.train import RunConfig, ScalingConfig
        from ray.train.torch import TorchTrainer
    except ImportError:
        raise Unsupported("--executor ray needs the ray extra: pip install 'fmstack[ray]'") from None
    if not ray.is_initialized():
        connect_ray(hub.settings)
    # Under FMSTACK_HOME, not the system temp folder: a killed driver's job files are there for gc.
    with scratch_dir(hub.settings.home, "ray") as tmp:
        job, result = write_job(hub, spec, run_id, folder, Path(tmp))
        trainer = TorchTrainer(
            _train_loop,
            train_loop_config=json.loads(job.read_text()),
            scaling_config=ScalingConfig(num_workers=spec.nproc, use_gpu=device == "cuda"),
            run_config=RunConfig(name=f"fmstack-run-{run_id}", storage_path=str(Path(tmp) / "ray")),
        )
        try:
            trainer.fit()
        except Exception as exc:  # Ray wraps worker failures; a typed error from rank 0 is raised first
            read_outcome(result)
            raise rank_failure("Ray Train", None, str(exc)) from exc
        outcome = read_outcome(result)
    if not outcome:
        raise RuntimeError("Ray Train finished but rank 0 wrote no result")
    return outcome
