"""``fmstack train finetune|pretrain|run``: thin over ``fmstack.train``; flags and YAML parse into the
same ``TrainSpec``."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from fmstack.cli.output import JsonFlag, console, emit, err_console
from fmstack.errors import InvalidInput, clip
from fmstack.hub import Hub

app = typer.Typer(no_args_is_help=True)
OBJECTIVES = ("mlm", "clm")  # the tasks `pretrain` trains (`finetune --task` takes them all)

Opt = typer.Option
Data = Annotated[str, Opt("--data", "-d", help="Dataset version ref (NS/NAME[:N|@ALIAS]).")]
Epochs = Annotated[int | None, Opt("--epochs", help="Passes over the train split (default 3).")]
MaxSteps = Annotated[
    int | None,
    Opt("--max-steps", help="Stop after this many optimizer steps (or when --epochs end, if sooner)."),
]
Lr = Annotated[float | None, Opt("--lr", help="Peak learning rate (default depends on the method).")]
Batch = Annotated[
    int | None, Opt("--batch-size", "-b", help="Examples per micro-batch per process (default 32).")
]
Accum = Annotated[int | None, Opt("--grad-accum", help="Micro-batches per optimizer step (default 1).")]
MaxLen = Annotated[
    int | None, Opt("--max-length", help="Truncate sequences to this many tokens (default 128).")
]
Prec = Annotated[str | None, Opt("--precision", help="no | bf16 | fp16 (fp16 needs a GPU).")]
Dev = Annotated[str | None, Opt("--device", help="auto | cpu | cuda | mps.")]
Nproc = Annotated[
    int | None, Opt("--nproc", help="Processes for DDP through torchrun (gloo on CPU, NCCL on GPU).")
]
Executor = Annotated[
    str | None, Opt("--executor", help="local (default) or ray (Ray Train, needs the ray extra).")
]
Output = Annotated[str | None, Opt("--output", "-o", help="NS/NAME to push the result to.")]
EvalSplit = Annotated[
    str | None, Opt("--eval-split", help="Split to evaluate on (default: validation if present).")
]
EvalEvery = Annotated[int | None, Opt("--eval-every", help="Evaluate every N steps (always at the end).")]
EarlyStop = Annotated[
    int | None, Opt("--early-stopping", help="Stop after N evaluations without improvement.")
]
SaveEvery = Annotated[int | None, Opt("--save-every", help="Checkpoint every N steps.")]
CkptDir = Annotated[
    str | None, Opt("--checkpoint-dir", help="Where checkpoints go (default under FMSTACK_HOME).")
]
Resume = Annotated[bool, Opt("--resume", help="Continue from the latest checkpoint of this same spec.")]
Seed = Annotated[int | None, Opt("--seed", help="Seed for initialisation, data order and masking.")]
Schedule = Annotated[str | None, Opt("--schedule", help="linear | cosine | constant (after warmup).")]
Compile = Annotated[bool, Opt("--compile", help="torch.compile the model.")]
Ema = Annotated[
    float | None,
    Opt(
        "--ema",
        help="Evaluate and keep an exponential moving average of the weights with this decay (e.g. "
        "0.998: about the last 500 steps; default: the last step's weights).",
    ),
]
SpecOut = Annotated[Path | None, Opt("--save-spec", help="Also write the spec as YAML to this file.")]


def _clean(values: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in values.items() if v is not None and v is not False}


@contextmanager
def _bar(enabled: bool) -> Iterator[Any]:
    if not enabled or not err_console.is_terminal:
        yield None
        return
    columns = (
        TextColumn("train"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("loss {task.fields[loss]:.4f}  {task.fields[rate]:.1f} samples/s"),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=err_console, transient=True) as bar:
        yield bar


def _run(raw: dict[str, Any], json_output: bool, save_spec: Path | None = None) -> None:
    from fmstack.train.spec import parse_spec

    spec = parse_spec(raw)  # before importing torch and transformers: a bad flag is refused in a second
    from fmstack.train.run import train

    if save_spec:
        import yaml

        # Without resume: a saved spec describes the training, and would otherwise resume every later run.
        fields = spec.model_dump(exclude_defaults=True, exclude={"resume"})
        try:
            save_spec.write_text(yaml.safe_dump(fields, sort_keys=False))
        except OSError as exc:
            raise InvalidInput(
                f"--save-spec {clip(save_spec)!r}: cannot write there ({exc.strerror or exc}); "
                "give a file in a folder that exists and that you can write to"
            ) from None
    with Hub.open() as hub, _bar(not json_output) as bar:
        task_id = bar.add_task("train", total=None, loss=0.0, rate=0.0) if bar else None

        def report(p: Any) -> None:
            if bar is not None:
                bar.update(task_id, total=p.total, completed=p.step, loss=p.loss, rate=p.samples_per_s)
            if p.eval:
                shown = ", ".join(f"{k} {v:.4f}" for k, v in p.eval.items() if isinstance(v, float))
                err_console.print(f"step {p.step}/{p.total}: {shown}", highlight=False)

        result = train(hub, spec, report=report)
    emit(result, json_output, lambda: _show(result, spec.resume))


def _show(result: Any, resume: bool) -> None:
    metrics = ", ".join(f"{k} {v:.4f}" for k, v in result.metrics.items()) or "no eval split"
    pushed = "pushed" if result.output.run_id == result.run_id else "unchanged, already"  # identical weights
    console.print(f"run {result.run_id}: {pushed} [bold]{result.output.ref}[/] ({result.output.kind})")
    if result.resumed_from is not None:
        console.print(f"  resumed from the checkpoint of step {result.resumed_from}")
    elif resume:
        console.print("  --resume found no checkpoint of this run: trained from the start")
    console.print(
        f"  {result.steps} steps in {result.train_seconds:.1f}s, {result.samples_per_s:.1f} samples/s, "
        f"{result.tokens_per_s:.0f} tokens/s; trainable {result.trainable_params:,} of {result.total_params:,} params"
    )
    console.print(f"  {metrics}", highlight=False)


@app.command()
def finetune(
    base: Annotated[str, Opt("--base", help="Base model version ref, e.g. fmstack/minilm-l6.")],
    data: Data,
    task: Annotated[
        str, Opt("--task", "-t", help="classification | embedding | mlm | clm.")
    ] = "classification",
    method: Annotated[
        str, Opt("--method", "-m", help="probe | full | lora | ia3 | adapter | prefix.")
    ] = "full",
    epochs: Epochs = None,
    max_steps: MaxSteps = None,
    lr: Lr = None,
    batch_size: Batch = None,
    grad_accum: Accum = None,
    max_length: MaxLen = None,
    precision: Prec = None,
    device: Dev = None,
    nproc: Nproc = None,
    executor: Executor = None,
    output: Output = None,
    eval_split: EvalSplit = None,
    eval_every: EvalEvery = None,
    early_stopping: EarlyStop = None,
    save_every: SaveEvery = None,
    checkpoint_dir: CkptDir = None,
    resume: Resume = False,
    seed: Seed = None,
    schedule: Schedule = None,
    compile_model: Compile = False,
    lora_r: Annotated[int | None, Opt("--lora-r", help="LoRA rank (default 8).")] = None,
    lora_alpha: Annotated[int | None, Opt("--lora-alpha", help="LoRA alpha (default 16).")] = None,
    adapter_type: Annotated[str | None, Opt("--adapter-type", help="houlsby | pfeiffer.")] = None,
    adapter_size: Annotated[int | None, Opt("--adapter-size", help="Bottleneck width (default 64).")] = None,
    prefix_length: Annotated[
        int | None, Opt("--prefix-length", help="Prefix vectors per layer (default 16).")
    ] = None,
    pooling: Annotated[
        str | None,
        Opt(
            "--pooling",
            help="mean | cls: how token states become one vector (embeddings) or the classifier's input (mean of the tokens, default; cls: the architecture's own head).",
        ),
    ] = None,
    head_lr: Annotated[
        float | None,
        Opt(
            "--head-lr",
            help="Classification: peak learning rate of the task head (default: 3e-3 for full, else --lr).",
        ),
    ] = None,
    layer_decay: Annotated[
        float | None,
        Opt(
            "--layer-decay",
            help="Layer-wise learning-rate decay: each transformer block trains at this times the rate "
            "of the block above it (e.g. 0.9; default: one rate for the whole encoder).",
        ),
    ] = None,
    head: Annotated[
        str | None,
        Opt(
            "--head",
            help="Classification: linear (default) or cosine, a new head that scores each class by "
            "20 x the cosine between the pooled vector and the class's weights.",
        ),
    ] = None,
    rdrop: Annotated[
        float | None,
        Opt(
            "--rdrop",
            help="Single-label classification: R-Drop weight, a consistency loss between two dropout "
            "passes of each batch (e.g. 1.0; default 0: off; each step computes the batch twice).",
        ),
    ] = None,
    label_smoothing: Annotated[
        float | None,
        Opt(
            "--label-smoothing",
            help="Single-label classification: cross-entropy label smoothing (default 0).",
        ),
    ] = None,
    ema: Ema = None,
    save_spec: SpecOut = None,
    json_output: JsonFlag = False,
) -> None:
    """Adapt a base model to a task: a model version (probe, full) or an adapter version (lora, ia3,
    adapter, prefix), with lineage to the base, the dataset and the run."""
    values = dict(locals())
    values["compile"] = values.pop("compile_model")
    for key in ("json_output", "save_spec"):
        values.pop(key)
    _run(_clean(values), json_output, save_spec)


@app.command()
def pretrain(
    data: Data,
    objective: Annotated[str, Opt("--objective", help="mlm (masked) or clm (causal).")] = "mlm",
    arch: Annotated[
        str | None, Opt("--arch", help="bert-tiny | bert-small | gpt2-tiny | gpt2-small (from scratch).")
    ] = None,
    base: Annotated[
        str | None, Opt("--base", help="Continue pretraining this model version instead.")
    ] = None,
    tokenizer: Annotated[
        str | None, Opt("--tokenizer", help="Model version whose tokenizer --arch uses.")
    ] = None,
    epochs: Epochs = None,
    max_steps: MaxSteps = None,
    lr: Lr = None,
    batch_size: Batch = None,
    grad_accum: Accum = None,
    max_length: MaxLen = None,
    precision: Prec = None,
    device: Dev = None,
    nproc: Nproc = None,
    output: Output = None,
    eval_split: EvalSplit = None,
    eval_every: EvalEvery = None,
    early_stopping: EarlyStop = None,
    save_every: SaveEvery = None,
    checkpoint_dir: CkptDir = None,
    resume: Resume = False,
    seed: Seed = None,
    schedule: Schedule = None,
    ema: Ema = None,
    save_spec: SpecOut = None,
    json_output: JsonFlag = False,
) -> None:
    """Pretrain a masked or causal language model from scratch (--arch) or continue a base (--base)."""
    if objective not in OBJECTIVES:
        raise InvalidInput(f"--objective: unknown objective {objective!r} (use mlm (masked) or clm (causal))")
    values = dict(locals())
    values["task"] = values.pop("objective")
    for key in ("json_output", "save_spec"):
        values.pop(key)
    _run(_clean(values), json_output, save_spec)


@app.command("run")
def run_spec(
    spec_file: Annotated[Path, typer.Argument(help="A YAML training spec (the same fields as the flags).")],
    resume: Resume = False,
    json_output: JsonFlag = False,
) -> None:
    """Run a training spec from a YAML file."""
    from fmstack.train.spec import read_spec_file

    raw = read_spec_file(spec_file)
    if resume:
        raw["resume"] = True
    _run(raw, json_output)
