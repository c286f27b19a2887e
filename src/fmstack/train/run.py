"""A training run from start to finish: pin the input versions, record the run, fit (in this process
or across processes with torchrun), push the output with lineage, and close the run record."""

from __future__ import annotations

from fmstack.data import format as dataformat
from fmstack.errors import InvalidInput, clip
from fmstack.hub import HubApi, Kind
from fmstack.hub.checkpoint_dirs import claim
from fmstack.hub.refs import parse_ref
from fmstack.hub.scratch import scratch_dir
from fmstack.train import checkpoint, registry
from fmstack.train.fit import Reporter, checkpoint_root, fit_here
from fmstack.train.precision import check_precision, pick_device
from fmstack.train.result import TrainResult, TrainStats
from fmstack.train.spec import TrainSpec
from fmstack.train.versions import check_output, resolve_as

# spec field -> (the kind of version it takes, the flag that sets it)
INPUTS: dict[str, tuple[Kind, str]] = {
    "base": ("model", "--base"),
    "data": ("dataset", "--data"),
    "tokenizer": ("model", "--tokenizer"),
    "unlabeled": ("dataset", "--unlabeled"),
}


def pin(hub: HubApi, spec: TrainSpec) -> TrainSpec:
    """Refs -> exact versions (``ns/name:N``), so the run record and lineage name what was used;
    a ref of the wrong kind (a dataset as --base...) is refused here."""
    update = {
        field: resolve_as(hub, ref, (kind,), flag).ref
        for field, (kind, flag) in INPUTS.items()
        if (ref := getattr(spec, field))
    }
    return spec.model_copy(update=update)


def output_kind(spec: TrainSpec) -> Kind:
    return "adapter" if registry.method(spec.method).is_adapter else "model"


def default_output(spec: TrainSpec, user: str) -> str:
    source = parse_ref(spec.base).name if spec.base else str(spec.arch)
    suffix = spec.task if spec.method == "full" else f"{spec.task}-{spec.method}"
    return f"{user}/{source}-{suffix}"


def check_data(hub: HubApi, spec: TrainSpec) -> None:
    """The dataset fits the run: its splits exist, and a classifier has labels to learn. Refused here,
    before a run record, not minutes later after the model loaded."""
    manifest = dataformat.read_manifest(hub.checkout(str(spec.data)))
    have = ", ".join(manifest.splits) or "none"
    for flag, split in (("train_split", spec.train_split), ("--eval-split", spec.eval_split)):
        if split is not None and split not in manifest.splits:
            raise InvalidInput(
                f"{flag}: the dataset {spec.data} has no split {clip(split)!r} (splits: {have})"
            )
    if spec.task == "classification" and not manifest.labels:
        raise InvalidInput(
            f"--data: classification needs labels, and the dataset {spec.data} has none; ingest it with "
            "--label-column, or train a task without labels (--task embedding, mlm or clm)"
        )
    if spec.unlabeled:
        unlabeled = dataformat.read_manifest(hub.checkout(spec.unlabeled))
        if "train" not in unlabeled.splits or "text" not in unlabeled.columns:
            raise InvalidInput(
                f"--unlabeled: {spec.unlabeled} needs a train split with a text column (it has splits: "
                f"{', '.join(unlabeled.splits) or 'none'}; columns: {', '.join(unlabeled.columns) or 'none'})"
            )


def train(hub: HubApi, spec: TrainSpec, report: Reporter | None = None) -> TrainResult:
    device = pick_device(spec.device)
    check_precision(spec.precision, device)
    spec = pin(hub, spec)
    output_repo = spec.output or default_output(spec, hub.settings.user)
    check_output(hub, output_repo, output_kind(spec))
    check_data(hub, spec)
    if spec.checkpoint_dir or spec.save_every:
        checkpoint.check_writable(checkpoint_root(hub, spec))
    if spec.executor == "ray" or spec.nproc > 1:
        from fmstack.train.launch import check_rank_hub

        check_rank_hub(hub)  # before a run is opened
    if spec.executor == "ray":
        from fmstack.train.ray_executor import connect_ray

        connect_ray(hub.settings)  # every Ray node must reach the hub: checked before a run is opened
    inputs = [getattr(spec, field) for field in INPUTS if getattr(spec, field)]
    # The record names the rates used, not "the method's default" (null).
    recorded = {**spec.model_dump(), "lr": spec.learning_rate, "head_lr": spec.head_learning_rate}
    # Recorded from the start: an error, Ctrl-C or SIGTERM marks the run failed with the reason; the
    # scratch folder is under FMSTACK_HOME, where gc finds it if the process is killed outright.
    with (
        hub.runs.recorded("train", recorded, inputs=inputs, device=device) as run_id,
        scratch_dir(hub.settings.home, "train") as tmp,
    ):
        _claim_checkpoints(hub, spec, run_id)
        folder = tmp / "output"
        folder.mkdir()
        if spec.executor == "ray":
            from fmstack.train.ray_executor import fit_on_ray

            outcome = fit_on_ray(hub, spec, run_id, folder, device)
        elif spec.nproc > 1:
            from fmstack.train.launch import fit_distributed

            outcome = fit_distributed(hub, spec, run_id, folder)
        else:
            outcome = fit_here(hub, spec, run_id, folder, report)
        version = hub.push(
            output_repo,
            folder,
            outcome["kind"],
            message=f"train run {run_id}: {spec.task} {spec.method}",
            card=outcome["card"],
            run_id=run_id,
        )
        stats = TrainStats(**{k: v for k, v in outcome.items() if k not in ("kind", "card")}).stats()
        hub.runs.finish(run_id, "succeeded", spec_update={"result": {**stats, "output": version.ref}})
    return TrainResult(run_id=run_id, output=version, **stats)


def _claim_checkpoints(hub: HubApi, spec: TrainSpec, run_id: int) -> None:
    """Name this run in the checkpoint folder it writes or resumes: once the run ends, fsck and gc
    tell from its record whether the checkpoints are finished with or kept for --resume."""
    root = checkpoint_root(hub, spec)
    if spec.save_every or root.is_dir():
        claim(root, run_id)
