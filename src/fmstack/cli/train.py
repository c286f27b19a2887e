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
from fmstack.cli.remote import open_hub
from fmstack.cli.spec_options import Flag, spec_options
from fmstack.errors import InvalidInput, clip
from fmstack.train import registry
from fmstack.train.spec import TrainSpec

app = typer.Typer(no_args_is_help=True)
OBJECTIVES = ("mlm", "clm")  # the tasks `pretrain` trains (`finetune --task` takes them all)

# Every option comes from a TrainSpec field (its description is the help, its default the spec's):
# only how a field is spelled on the command line, and which fields a command leaves out, are here.
_COMMON: dict[str, Flag] = {
    "data": Flag("--data", "-d"),
    "batch_size": Flag("--batch-size", "-b"),
    "output": Flag("--output", "-o"),
}
# Each method's own options, grouped under it in --help (the plugin names them).
METHOD_OPTIONS = {
    option: Flag(panel=f"--method {name}") for name, m in registry.METHODS.items() for option in m.options
}
FINETUNE_FLAGS = {
    **_COMMON,
    **METHOD_OPTIONS,
    "base": Flag("--base", required=True),
    "task": Flag("--task", "-t", default="classification"),
    "method": Flag("--method", "-m", default="full"),
}
PRETRAIN_FLAGS = {
    **_COMMON,
    "task": Flag(
        "--objective", default="mlm", metavar="|".join(OBJECTIVES), help="mlm (masked) or clm (causal)."
    ),
    "base": Flag(help="Continue pretraining this model version instead of --arch."),
}
# Not a flag of finetune: the spec's version, and the fields of pretraining from scratch.
FINETUNE_HIDDEN = {"schema_version", "arch", "tokenizer"}
# Not a flag of pretrain: the method (pretraining trains every weight), the other methods' options and
# the options of the tasks it does not train (the tasks declare theirs).
FINETUNE_ONLY_OPTIONS = {
    option
    for name, task in registry.TASKS.items()
    if name not in OBJECTIVES
    for option in task.options
    if not any(option in registry.TASKS[t].options for t in OBJECTIVES)
}
PRETRAIN_HIDDEN = {"schema_version", "method"} | set(METHOD_OPTIONS) | FINETUNE_ONLY_OPTIONS
SpecOut = Annotated[
    Path | None, typer.Option("--save-spec", help="Also write the spec as YAML to this file.")
]
Resume = Annotated[bool, typer.Option("--resume", help=TrainSpec.model_fields["resume"].description)]


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
    with open_hub() as hub, _bar(not json_output) as bar:
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
@spec_options(TrainSpec, flags=FINETUNE_FLAGS, hide=FINETUNE_HIDDEN)
def finetune(fields: dict[str, Any], save_spec: SpecOut = None, json_output: JsonFlag = False) -> None:
    """Adapt a base model to a task: a model version (probe, full) or an adapter version (lora, ia3,
    adapter, prefix), with lineage to the base, the dataset and the run."""
    _run(fields, json_output, save_spec)


@app.command()
@spec_options(TrainSpec, flags=PRETRAIN_FLAGS, hide=PRETRAIN_HIDDEN)
def pretrain(fields: dict[str, Any], save_spec: SpecOut = None, json_output: JsonFlag = False) -> None:
    """Pretrain a masked or causal language model from scratch (--arch) or continue a base (--base)."""
    if fields["task"] not in OBJECTIVES:
        raise InvalidInput(
            f"--objective: unknown objective {clip(fields['task'])!r} (use mlm (masked) or clm (causal))"
        )
    _run(fields, json_output, save_spec)


@app.command("run")
def run_spec(
    spec_file: Annotated[Path, typer.Argument(help="A YAML training spec (the same fields as the flags).")],
    resume: Resume = False,
    json_output: JsonFlag = False,
) -> None:
    """Run a training spec from a YAML file."""
    from fmstack.specfile import read_spec_file

    raw = read_spec_file(spec_file, "training spec")
    if resume:
        raw["resume"] = True
    _run(raw, json_output)


@app.command("add-class")
def add_class_cmd(
    ref: Annotated[str, typer.Argument(help="The classifier version to grow (NS/NAME[:N|@ALIAS]).")],
    label: Annotated[str, typer.Option("--label", "-l", help="The new class's name.")],
    examples: Annotated[
        Path, typer.Option("--examples", "-e", help="A text file of the new class's examples, one per line.")
    ],
    output: Annotated[
        str | None, typer.Option("--output", "-o", help="NS/NAME to push to (default: the same repo).")
    ] = None,
    alias: Annotated[
        str | None,
        typer.Option(
            "--alias",
            help="Move this alias (e.g. production) to the new version: a server following it swaps it in.",
        ),
    ] = None,
    json_output: JsonFlag = False,
) -> None:
    """Add a class to a trained classifier from a few examples, without retraining.

    The new class's head row is the mean of its examples' sentence vectors (a prototype; exact for a
    cosine head, scaled to the trained rows for a linear one). The result is a new model version with
    lineage to REF, loading in transformers like REF; the old classes' weights are untouched.
    Five to twenty varied examples are typical (docs/fewshot.md).

    Example: fmstack train add-class acme/intents@production --label card_swallowed --examples new.txt --alias production
    """
    from fmstack.textfile import read_user_text
    from fmstack.train.add_class import add_class

    texts = read_user_text(examples, "examples file").splitlines()
    with open_hub() as hub:
        result = add_class(hub, ref, label, texts, output=output, alias=alias)
    emit(result, json_output, lambda: _show_added(result, alias))


def _show_added(result: Any, alias: str | None) -> None:
    moved = f"; {alias} now points to it" if alias else ""
    console.print(
        f"run {result.run_id}: pushed [bold]{result.output.ref}[/] with class {result.label!r} from "
        f"{result.examples} examples ({result.labels} classes){moved}",
        highlight=False,
    )
