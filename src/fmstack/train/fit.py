"""The body every training process runs: prepare, fit, write the output (rank 0), record progress.

``run.train`` calls ``fit_here`` in its own process; a torchrun or Ray Train rank calls it through
``worker.run_job``. It sits in a module of its own so that the launchers (``launch``,
``ray_executor``, ``worker``) import it without importing ``run``, which imports them: the import
graph stays a DAG (an import-linter contract in pyproject.toml keeps it so).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fmstack.hub import HubApi
from fmstack.hub.checkpoint_dirs import checkpoints_root
from fmstack.train.loop import FitResult, Progress, scalar_metrics
from fmstack.train.precision import pick_device
from fmstack.train.spec import TrainSpec

Reporter = Callable[[Progress], None]


def checkpoint_root(hub: HubApi, spec: TrainSpec) -> Path:
    """Explicit, or one folder per spec identity, so rerunning the same command with --resume finds it."""
    if spec.checkpoint_dir:
        return Path(spec.checkpoint_dir)
    return checkpoints_root(hub.settings.home) / spec.identity()


def fit_here(
    hub: HubApi, spec: TrainSpec, run_id: int, folder: Path, report: Reporter | None
) -> dict[str, Any]:
    """Prepare, fit and write the output in this process (rank 0 of a torchrun job writes too).

    Returns the ``TrainStats`` fields, plus ``kind`` and ``card`` of the output on rank 0: JSON, as a
    rank hands it back to the launcher.
    """
    from accelerate import Accelerator  # type: ignore[import-untyped]

    from fmstack.train.loop import Loop
    from fmstack.train.prepare import prepare
    from fmstack.train.publish import card, write_output

    device = pick_device(spec.device)
    accelerator = Accelerator(cpu=device == "cpu", mixed_precision=spec.precision)
    prep = prepare(hub, spec)
    rank0 = accelerator.is_main_process

    def on_progress(progress: Progress) -> None:
        if rank0:
            record_progress(hub, run_id, progress)
            if report:
                report(progress)

    result: FitResult = Loop(prep, accelerator, checkpoint_root(hub, spec), on_progress).fit()
    summary = result.stats()
    if rank0:
        kind = write_output(prep, result.model, folder, spec.base, spec.data)
        summary |= {"kind": kind, "card": card(prep, spec.base, spec.data, result.metrics, run_id)}
        hub.runs.append_log(run_id, _log_line(result))
    accelerator.wait_for_everyone()
    return summary


def _finite(metrics: dict[str, float]) -> dict[str, float]:
    # A perplexity of exp(800) is inf; a metric store holds numbers, so such a point is left out.
    return {k: v for k, v in metrics.items() if math.isfinite(v)}


def record_progress(hub: HubApi, run_id: int, progress: Progress) -> None:
    """The run's metric curves: about 200 points of loss/lr/throughput, and every evaluation."""
    every = max(1, progress.total // 200)  # about 200 points per curve, whatever the run length
    if progress.step % every == 0 or progress.step == progress.total or progress.eval:
        hub.runs.log_metrics(
            run_id,
            progress.step,
            _finite({"loss": progress.loss, "lr": progress.lr, "samples_per_s": progress.samples_per_s}),
        )
    if progress.eval:
        hub.runs.log_metrics(
            run_id, progress.step, _finite({f"eval_{k}": v for k, v in scalar_metrics(progress.eval).items()})
        )


def _log_line(result: FitResult) -> str:
    resumed = f" (resumed from step {result.resumed_from})" if result.resumed_from else ""
    shown = ", ".join(f"{k}={v:.4f}" for k, v in result.metrics.items())
    return (
        f"trained {result.steps} steps{resumed} in {result.train_seconds:.1f}s, "
        f"{result.samples_per_s:.1f} samples/s; {shown or 'no eval split'}"
    )
